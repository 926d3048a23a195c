package eval

import (
	"errors"
	"fmt"
	"math"
	"strconv"

	"github.com/bitrun/bitrun/internal/finite"
	"github.com/bitrun/bitrun/internal/topk"
)

// MaxClasses bounds the confusion matrix (classes² counters).
const MaxClasses = 4096

// TopK returns the indices of the k highest scores, best first; ties go to
// the lower index and NaN scores rank last (as serve ranks them).
func TopK(scores []float32, k int) []int { return topk.Indices(scores, k) }

func isNaN(f float32) bool { return f != f }

// rank is the 0-based position label would take in TopK(scores, len(scores)).
// A NaN score for label ranks last.
func rank(scores []float32, label int) int {
	s := scores[label]
	if isNaN(s) {
		return len(scores)
	}
	r := 0
	for i, v := range scores {
		if isNaN(v) {
			continue
		}
		if v > s || (v == s && i < label) {
			r++
		}
	}
	return r
}

// Metrics accumulates classification results. The zero value is not usable;
// call NewMetrics.
type Metrics struct {
	k         int       // the k of top-k (5)
	n         int64     // examples seen
	top1      int64     // correct at top-1
	topk      int64     // correct at top-k
	confusion [][]int64 // [true][predicted]
	classes   int       // model output width seen so far
}

// NewMetrics returns an accumulator for top-1 and top-k accuracy.
func NewMetrics(k int) *Metrics {
	if k < 1 {
		k = 1
	}
	return &Metrics{k: k}
}

// grow makes the confusion matrix at least n×n.
func (m *Metrics) grow(n int) {
	if n <= len(m.confusion) {
		return
	}
	for i := range m.confusion {
		row := make([]int64, n)
		copy(row, m.confusion[i])
		m.confusion[i] = row
	}
	for len(m.confusion) < n {
		m.confusion = append(m.confusion, make([]int64, n))
	}
}

// ErrNonFinite is wrapped when a model answers NaN or ±Inf logits: such a
// batch is refused as a whole (top-1, top-k, per-class accuracy and the
// confusion matrix would each rank the NaN differently).
var ErrNonFinite = errors.New("eval: non-finite logits")

// Add records a batch: logits is len(labels)×classes row-major. Labels
// outside [0, classes) count as wrong (the model cannot predict them).
// Non-finite logits fail with ErrNonFinite and record nothing.
func (m *Metrics) Add(logits []float32, classes int, labels []int) error {
	if classes <= 0 || len(logits) != classes*len(labels) {
		return fmt.Errorf("eval: %d logits for %d labels × %d classes", len(logits), len(labels), classes)
	}
	maxLabel := -1
	for _, l := range labels {
		if l < 0 {
			return fmt.Errorf("eval: negative label %d", l)
		}
		maxLabel = max(maxLabel, l)
	}
	n := max(classes, maxLabel+1)
	if n > MaxClasses {
		return fmt.Errorf("eval: %d classes exceed the limit of %d", n, MaxClasses)
	}
	if i := finite.Index(logits); i >= 0 {
		return fmt.Errorf("%w: logit %v for example %d of the batch, class %d", ErrNonFinite, logits[i], i/classes, i%classes)
	}
	m.grow(n) // after every check: a refused batch records nothing
	m.classes = max(m.classes, classes)
	for i, l := range labels {
		row := logits[i*classes : (i+1)*classes]
		pred := TopK(row, 1)[0]
		m.confusion[l][pred]++
		m.n++
		if l >= classes {
			continue
		}
		r := rank(row, l)
		if r == 0 {
			m.top1++
		}
		if r < m.k {
			m.topk++
		}
	}
	return nil
}

// N is the number of examples recorded.
func (m *Metrics) N() int64 { return m.n }

// Top1 is the top-1 accuracy in [0, 1] (NaN before any example).
func (m *Metrics) Top1() float64 { return ratio(m.top1, m.n) }

// TopK is the top-k accuracy in [0, 1].
func (m *Metrics) TopK() float64 { return ratio(m.topk, m.n) }

// K is the k of TopK, capped at the number of classes seen.
func (m *Metrics) K() int { return min(m.k, max(m.classes, 1)) }

// Confusion returns a copy of the confusion matrix, rows true class,
// columns predicted class.
func (m *Metrics) Confusion() [][]int64 {
	out := make([][]int64, len(m.confusion))
	for i, r := range m.confusion {
		out[i] = append([]int64(nil), r...)
	}
	return out
}

// PerClass returns each true class's example count and top-1 accuracy.
func (m *Metrics) PerClass(labels []string) []ClassAccuracy {
	out := make([]ClassAccuracy, len(m.confusion))
	for c, row := range m.confusion {
		var n int64
		for _, v := range row {
			n += v
		}
		out[c] = ClassAccuracy{Index: c, Count: n, Correct: row[c], Accuracy: Ratio(ratio(row[c], n))}
		if c < len(labels) {
			out[c].Label = labels[c]
		}
	}
	return out
}

func ratio(a, b int64) float64 {
	if b == 0 {
		return math.NaN()
	}
	return float64(a) / float64(b)
}

// ClassAccuracy is the top-1 accuracy of one true class.
type ClassAccuracy struct {
	Index    int    `json:"index"`
	Label    string `json:"label,omitempty"`
	Count    int64  `json:"count"`
	Correct  int64  `json:"correct"`
	Accuracy Ratio  `json:"accuracy"` // NaN (JSON null) when Count is 0
}

// Ratio is a fraction in [0, 1], NaN when undefined; it marshals NaN as
// JSON null.
type Ratio float64

// MarshalJSON writes the ratio, or null for NaN.
func (r Ratio) MarshalJSON() ([]byte, error) {
	if math.IsNaN(float64(r)) || math.IsInf(float64(r), 0) {
		return []byte("null"), nil
	}
	return []byte(strconv.FormatFloat(float64(r), 'g', 6, 64)), nil
}

// UnmarshalJSON reads a number or null (NaN).
func (r *Ratio) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*r = Ratio(math.NaN())
		return nil
	}
	v, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return fmt.Errorf("eval: ratio %q: %w", b, err)
	}
	*r = Ratio(v)
	return nil
}
