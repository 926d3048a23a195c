package quantize

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Method is how an activation's range is taken from the calibration data.
// The zero value is min-max.
type Method struct {
	// Percentile, when positive, clips the range at this percentile of the
	// absolute values (for example 99.99); 0 means min-max.
	Percentile float64
	// Entropy clips the range at the threshold whose quantized histogram of
	// absolute values is closest to the measured one (least Kullback-Leibler
	// divergence, the method of TensorRT's and ONNX Runtime's entropy
	// calibrators). Exclusive with Percentile.
	Entropy bool
}

// Entropy is the KL-divergence (entropy) method.
var Entropy = Method{Entropy: true}

// MinMax is the min-max method: the range is the smallest and largest value
// seen.
var MinMax = Method{}

// String is the method as ParseMethod reads it: "minmax", "entropy" or
// "percentile:P".
func (m Method) String() string {
	if m.Entropy {
		return "entropy"
	}
	if m.Percentile > 0 {
		return "percentile:" + strconv.FormatFloat(m.Percentile, 'g', -1, 64)
	}
	return "minmax"
}

// DefaultPercentile is the percentile of "percentile" without a value.
const DefaultPercentile = 99.99

// ParseMethod reads "minmax", "entropy", "percentile" (99.99) or
// "percentile:P" with 50 <= P < 100.
func ParseMethod(s string) (Method, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	switch {
	case s == "minmax" || s == "min-max" || s == "":
		return MinMax, nil
	case s == "entropy" || s == "kl":
		return Entropy, nil
	case s == "percentile":
		return Method{Percentile: DefaultPercentile}, nil
	case strings.HasPrefix(s, "percentile:"):
		p, err := strconv.ParseFloat(strings.TrimPrefix(s, "percentile:"), 64)
		if err != nil || !(p >= 50 && p < 100) {
			return Method{}, fmt.Errorf("%w: calibration method %q: the percentile must be a number in [50, 100)", ErrOptions, s)
		}
		return Method{Percentile: p}, nil
	}
	return Method{}, fmt.Errorf("%w: calibration method %q (want minmax, entropy or percentile:P, e.g. percentile:99.99)", ErrOptions, s)
}

// histBins is the resolution of the percentile and entropy histograms.
const histBins = 2048

// rangeStats accumulates what calibration needs of one activation tensor:
// its exact min and max and, for the percentile and entropy methods, a histogram of
// absolute values over [0, top). The histogram keeps a fixed number of
// bins; when a value passes top, top doubles and neighbouring bins merge,
// so memory stays histBins counters whatever the data. Exact zeros are
// counted apart: every range represents them exactly, and in the first bin
// their spike would dominate the entropy method's comparison.
type rangeStats struct {
	name     string
	min, max float32
	n        int64
	zeros    int64   // exact zeros (ReLU outputs: about half), kept out of hist
	hist     []int64 // nil for min-max; the non-zero values
	top      float64
}

func newRangeStats(name string, m Method) *rangeStats {
	s := &rangeStats{name: name, min: float32(math.Inf(1)), max: float32(math.Inf(-1))}
	if m.Percentile > 0 || m.Entropy {
		s.hist = make([]int64, histBins)
	}
	return s
}

// add folds x into the statistics. A NaN or infinity gives an error
// wrapping ErrNonFinite with the flat index of the first one.
func (s *rangeStats) add(x []float32) error {
	lo, hi := s.min, s.max
	amax := float32(0)
	for i, v := range x {
		if v-v != 0 { // NaN or ±Inf
			return fmt.Errorf("%w: activation %q has %v at flat index %d", ErrNonFinite, s.name, v, i)
		}
		lo = min(lo, v)
		hi = max(hi, v)
		amax = max(amax, v, -v)
	}
	s.min, s.max = lo, hi
	s.n += int64(len(x))
	if s.hist == nil || len(x) == 0 {
		return nil
	}
	if s.top == 0 {
		s.top = float64(amax)
		if s.top == 0 {
			s.top = 1e-30
		}
	}
	for float64(amax) > s.top {
		s.grow()
	}
	scale := histBins / s.top
	last := histBins - 1
	h := s.hist
	zeros := int64(0)
	for _, v := range x {
		if v == 0 {
			zeros++
			continue
		}
		b := int(float64(max(v, -v)) * scale)
		if b > last {
			b = last
		}
		h[b]++
	}
	s.zeros += zeros
	return nil
}

// grow doubles top, merging each pair of bins into one.
func (s *rangeStats) grow() {
	for i := 0; i < histBins/2; i++ {
		s.hist[i] = s.hist[2*i] + s.hist[2*i+1]
	}
	clear(s.hist[histBins/2:])
	s.top *= 2
}

// bounds returns the range to quantize with method m: min-max, or clipped
// symmetrically at a threshold on the absolute values (the percentile, or
// the entropy threshold). The range always holds zero.
func (s *rangeStats) bounds(m Method) (lo, hi float32) {
	lo, hi = min(s.min, 0), max(s.max, 0)
	if s.hist == nil || s.n == 0 {
		return lo, hi
	}
	var thr float64
	switch {
	case m.Entropy:
		// A tensor that is never negative spends all 256 uint8 levels on
		// [0, thr]; a signed one about half of them on each side.
		levels := 128
		if s.min >= 0 {
			levels = 256
		}
		thr = float64(entropyBins(s.hist, levels)) * s.top / histBins
	case m.Percentile > 0:
		target := int64(math.Ceil(m.Percentile / 100 * float64(s.n)))
		cum := s.zeros
		thr = s.top
		for i, c := range s.hist {
			cum += c
			if cum >= target {
				thr = float64(i+1) * s.top / histBins
				break
			}
		}
	default:
		return lo, hi
	}
	t := float32(thr)
	return max(lo, -t), min(hi, t)
}

// entropyBins chooses the clipping threshold of a histogram of absolute
// values quantized to levels steps: the number i of leading bins whose
// reference distribution P (the first i bins, the counts past them added
// to bin i-1 as clipping puts them there) is closest, in Kullback-Leibler
// divergence, to Q, its quantized version (the i bins merged into levels
// equal groups, each group's count spread evenly over its non-empty bins).
// Candidates run from levels bins (no rounding at all) to the last
// non-empty bin; a histogram with fewer non-empty bins keeps them all.
//
// Work is O(bins²) per call (about 2 million steps for 2048 bins) and
// memory two bins-long buffers.
func entropyBins(hist []int64, levels int) int {
	last := len(hist)
	for last > 0 && hist[last-1] == 0 {
		last--
	}
	if last <= levels {
		return max(last, 1)
	}
	var total int64
	for _, c := range hist {
		total += c
	}
	// inside[i] is the count of the first i bins.
	inside := make([]int64, last+1)
	for i, c := range hist[:last] {
		inside[i+1] = inside[i] + c
	}
	q := make([]float64, last)
	best, bestKL := last, math.Inf(1)
	for i := levels; i <= last; i++ {
		// Q: each of the levels groups of bins [a, b) keeps its count
		// (without the clipped tail), spread over its non-empty bins.
		for j := range levels {
			a, b := j*i/levels, (j+1)*i/levels
			nonEmpty := 0
			for _, c := range hist[a:b] {
				if c != 0 {
					nonEmpty++
				}
			}
			share := 0.0
			if nonEmpty > 0 {
				share = float64(inside[b]-inside[a]) / float64(nonEmpty)
			}
			for k := a; k < b; k++ {
				q[k] = 0
				if hist[k] != 0 {
					q[k] = share
				}
			}
		}
		// P is hist[:i] with the tail (total - inside[i]) added to bin
		// i-1. Both are normalised by their sums: P's is total, Q's
		// inside[i].
		kl := 0.0
		qSum := float64(inside[i])
		for k := range i {
			p := float64(hist[k])
			if k == i-1 {
				p += float64(total - inside[i])
			}
			if p == 0 {
				continue
			}
			pn := p / float64(total)
			qn := q[k] / qSum
			if qn == 0 {
				// Only the last bin can be empty in the histogram and full
				// in P (the tail): a clip that leaves nothing below it.
				qn = 1e-12
			}
			kl += pn * math.Log(pn/qn)
		}
		if kl < bestKL {
			best, bestKL = i, kl
		}
	}
	return best
}

// uint8Params are the scale and zero point of an asymmetric uint8
// quantization of [lo, hi] (lo <= 0 <= hi): zero is represented exactly.
func uint8Params(lo, hi float32) (scale float32, zero uint8) {
	if hi-lo <= 0 {
		return 1, 0
	}
	scale = (hi - lo) / 255
	z := math.Round(float64(-lo / scale))
	return scale, uint8(min(max(z, 0), 255))
}

// int8PerChannel quantizes w (channels blocks of per values when stride
// is per, or strided when channels are the fast axis) symmetrically to
// int8 in [-127, 127] with one scale per channel. axisFast selects the
// layout: false for [channels, per...] (conv OIHW), true for [per,
// channels] (Gemm B [C, K], channels = K).
func int8PerChannel(w []float32, channels int, axisFast bool) (q []int8, scales []float32) {
	per := len(w) / channels
	idx := func(c, j int) int {
		if axisFast {
			return j*channels + c
		}
		return c*per + j
	}
	q = make([]int8, len(w))
	scales = make([]float32, channels)
	for c := range channels {
		amax := float32(0)
		for j := range per {
			v := w[idx(c, j)]
			amax = max(amax, v, -v)
		}
		s := amax / 127
		if s == 0 {
			s = 1
		}
		scales[c] = s
		for j := range per {
			k := idx(c, j)
			r := math.Round(float64(w[k] / s))
			q[k] = int8(min(max(r, -127), 127))
		}
	}
	return q, scales
}
