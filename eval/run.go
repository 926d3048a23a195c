package eval

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/bitrun/bitrun/data"
)

// Options configures Run. The zero value evaluates every example in
// batches of DefaultBatch.
type Options struct {
	Batch int // examples per batch; 0: DefaultBatch; negative or over 65536 is an error
	Limit int // evaluate only the first Limit examples; 0 or negative: all
	K     int // the k of top-k accuracy; 0: 5; negative is an error
	// Shard, when set (Count > 0), evaluates only that 1/Count of the
	// first Limit examples (Report.Shard records it, for Merge).
	Shard Shard
	// Progress, when set, is called after each batch with the examples done
	// and the total. It runs on Run's goroutine.
	Progress func(done, total int)
}

// DefaultBatch is the batch size when Options.Batch is 0.
const DefaultBatch = 32

// Report is the outcome of an evaluation.
type Report struct {
	Model       string          `json:"model"`
	ModelSHA256 string          `json:"model_sha256,omitempty"` // of the model file, when the caller sets it
	Dataset     string          `json:"dataset,omitempty"`
	Shard       *ShardInfo      `json:"shard,omitempty"` // the shard evaluated; nil for the whole run
	Images      int64           `json:"images"`
	Top1Correct int64           `json:"top1_correct"`
	TopKCorrect int64           `json:"topk_correct"`
	Classes     int             `json:"classes"`
	Labels      []string        `json:"labels,omitempty"`
	Top1        Ratio           `json:"top1"`
	K           int             `json:"k"`
	TopK        Ratio           `json:"topk"`
	PerClass    []ClassAccuracy `json:"per_class"`
	Confusion   [][]int64       `json:"confusion"` // rows true class, columns predicted
	Preprocess  Preprocess      `json:"preprocess"`
	Batch       int             `json:"batch"`
	Timing      Timing          `json:"timing"`
}

// Timing splits an evaluation's wall time.
type Timing struct {
	Seconds      float64 `json:"seconds"` // wall time of Run
	ImagesPerSec float64 `json:"images_per_sec"`
	// InferenceSeconds is time spent inside Classifier.Logits.
	InferenceSeconds float64 `json:"inference_seconds"`
	// StallSeconds is time the inference loop waited for a preprocessed batch.
	StallSeconds float64 `json:"stall_seconds"`
	// PreprocessSeconds is the (overlapped) time spent decoding and preprocessing.
	PreprocessSeconds float64 `json:"preprocess_seconds"`
}

// Overhead is the share of wall time not spent in inference (decode, resize,
// copies and bookkeeping that the pipeline did not hide).
func (t Timing) Overhead() float64 {
	if t.Seconds <= 0 {
		return 0
	}
	return max(0, t.Seconds-t.InferenceSeconds) / t.Seconds
}

type batch struct {
	buf    []float32
	labels []int
	n      int
	prep   time.Duration
	err    error
}

// Run evaluates c on ds. The next batch is decoded and preprocessed (on all
// cores, by data.Batch) while the current one runs through the classifier.
// Cancelling ctx stops it with ctx's error.
func Run(ctx context.Context, c Classifier, ds data.Dataset, opts Options) (*Report, error) {
	bs := opts.Batch
	if bs == 0 {
		bs = DefaultBatch
	}
	if bs < 0 || bs > 1<<16 {
		return nil, fmt.Errorf("eval: batch size %d out of range [1, 65536]", bs)
	}
	k := opts.K
	if k == 0 {
		k = 5
	}
	if k < 0 {
		return nil, fmt.Errorf("eval: negative top-k %d", k)
	}
	total := ds.Len()
	if opts.Limit > 0 && opts.Limit < total {
		total = opts.Limit
	}
	if total == 0 {
		return nil, errors.New("eval: the dataset is empty")
	}
	if err := opts.Shard.Check(); err != nil {
		return nil, err
	}
	order := opts.Shard.Indices(total)
	if len(order) == 0 {
		return nil, fmt.Errorf("eval: shard %s of %d examples is empty", opts.Shard, total)
	}
	if n := len(ds.Classes()); n > MaxClasses {
		return nil, fmt.Errorf("eval: dataset has %d classes, more than the limit of %d", n, MaxClasses)
	}
	pre := c.Preprocess()
	per := pre.Channels * pre.Size * pre.Size

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	const depth = 2 // batches prepared ahead
	free := make(chan []float32, depth+1)
	for range depth + 1 {
		free <- make([]float32, bs*per)
	}
	ready := make(chan batch, depth)
	go func() {
		defer close(ready)
		for start := 0; start < len(order); start += bs {
			var buf []float32
			select {
			case buf = <-free:
			case <-ctx.Done():
				return
			}
			idx := order[start:min(start+bs, len(order))]
			t0 := time.Now()
			b := batch{buf: buf, n: len(idx), labels: data.Labels(ds, idx)}
			b.err = data.Batch(ds, idx, pre.Size, pre.Channels, pre.Norm, false, nil, buf[:len(idx)*per])
			b.prep = time.Since(t0)
			select {
			case ready <- b:
			case <-ctx.Done():
				return
			}
			if b.err != nil {
				return
			}
		}
	}()

	m := NewMetrics(k)
	var tm Timing
	var infer, stall, prep time.Duration
	start := time.Now()
	done := 0
	classes := 0
	for {
		t0 := time.Now()
		b, ok := <-ready
		stall += time.Since(t0)
		if !ok {
			break
		}
		if b.err != nil {
			return nil, fmt.Errorf("eval: %w", b.err)
		}
		prep += b.prep
		t1 := time.Now()
		logits, kc, err := c.Logits(ctx, b.buf[:b.n*per], b.n)
		infer += time.Since(t1)
		if err != nil {
			return nil, err
		}
		if classes != 0 && kc != classes {
			return nil, fmt.Errorf("eval: classifier returned %d classes, earlier %d", kc, classes)
		}
		classes = kc
		if err := m.Add(logits, kc, b.labels); err != nil {
			return nil, err
		}
		free <- b.buf
		done += b.n
		if opts.Progress != nil {
			opts.Progress(done, len(order))
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("eval: %w", err)
	}
	if done != len(order) {
		return nil, fmt.Errorf("eval: evaluated %d of %d examples", done, len(order))
	}
	wall := time.Since(start)
	tm.Seconds = wall.Seconds()
	tm.ImagesPerSec = float64(done) / tm.Seconds
	tm.InferenceSeconds = infer.Seconds()
	tm.StallSeconds = stall.Seconds()
	tm.PreprocessSeconds = prep.Seconds()

	labels := c.Labels()
	if labels == nil || len(labels) < len(ds.Classes()) {
		labels = ds.Classes()
	}
	m.classes = max(m.classes, classes)
	r := m.report(c.Name(), "", "", labels, pre, bs, tm)
	if opts.Shard.Sharded() {
		r.Shard = &ShardInfo{Shard: opts.Shard, Total: total}
	}
	return r, nil
}

// report is the Report of the recorded counts.
func (m *Metrics) report(model, sha, dataset string, labels []string, pre Preprocess, bs int, tm Timing) *Report {
	return &Report{
		Model:       model,
		ModelSHA256: sha,
		Dataset:     dataset,
		Images:      m.N(),
		Top1Correct: m.top1,
		TopKCorrect: m.topk,
		Classes:     m.classes,
		Labels:      labels,
		Top1:        Ratio(m.Top1()),
		K:           min(m.k, m.classes),
		TopK:        Ratio(m.TopK()),
		PerClass:    m.PerClass(labels),
		Confusion:   m.Confusion(),
		Preprocess:  pre,
		Batch:       bs,
		Timing:      tm,
	}
}
