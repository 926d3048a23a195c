package train

import (
	"context"
	"fmt"
	"time"

	"github.com/bitrun/bitrun/data"
	"github.com/bitrun/bitrun/model"
	"github.com/bitrun/bitrun/nn"
)

// Estimate is the predicted wall time of a run, from a short timed probe of
// the training step (and of the forward pass for the test evaluation).
type Estimate struct {
	Steps       int           `json:"steps"`        // steps of the whole schedule
	ProbeImages int           `json:"probe_images"` // images per timed probe step
	PerImage    time.Duration `json:"per_image"`    // training step time per image (beyond the per-step cost)
	PerStep     time.Duration `json:"per_step"`     // per-step cost × micro-batches + PerImage × logical batch
	Train       time.Duration `json:"train"`        // PerStep × Steps
	Eval        time.Duration `json:"eval"`         // test evaluation (forward passes)
	Total       time.Duration `json:"total"`
	Probe       time.Duration `json:"probe"` // wall time the probe itself took
}

// probeBudget bounds the timed part of a probe: it stops after this much time
// or maxProbeSteps timed steps, whichever comes first.
const (
	probeBudget   = 300 * time.Millisecond
	maxProbeSteps = 6
	probeMaxBatch = 32
)

// EstimateRun predicts the wall time of Run(opts, trainSet, testSet) by
// timing a few training steps of 8 and 32 images (after a warm-up step each)
// on the run's architecture, resolution and trainable set, and scaling them
// to the run's batch and schedule; the test evaluation is estimated from a
// timed forward pass. It writes nothing. testSet may be nil. The figure is an
// estimate: other load on the machine and batch-size effects move it.
func EstimateRun(ctx context.Context, opts Options, trainSet, testSet data.Dataset) (*Estimate, error) {
	r, err := newRunner(opts, trainSet)
	if err != nil {
		return nil, err
	}
	params := opts.Init
	if params == nil {
		params = model.Init(r.cfg, int64(opts.Seed))
	}
	trainable, err := Preset(r.o.Freeze)
	if err != nil {
		return nil, err
	}
	net, err := NewNet(r.cfg, params, trainable)
	if err != nil {
		return nil, err
	}
	micro := r.o.Batch / r.o.BatchSplit
	res, classes := r.o.Resolution, r.cfg.Classes
	probe := &runner{o: r.o, cfg: r.cfg, ds: r.ds, n: r.n, steps: r.steps, perms: map[int][]int{}}
	t0 := time.Now()
	// timeSteps times training steps of b images.
	timeSteps := func(b int) (time.Duration, error) {
		x := nn.New(b, 3, res, res)
		labels := make([]int, b)
		targets := make([]float32, b*classes)
		probe.o.Batch = b
		return TimeSteps(ctx, probeBudget, maxProbeSteps, func(s int) error {
			if err := probe.trainBatch(s, x, labels); err != nil {
				return err
			}
			if err := OneHot(labels, classes, targets); err != nil {
				return err
			}
			if _, _, err := net.ForwardBackward(x, targets, 1/float32(b)); err != nil {
				return err
			}
			net.ZeroGrad()
			return nil
		})
	}
	// Two batch sizes separate the per-step cost (kernel packing, weight
	// standardisation) from the per-image cost; a slow first size (a large
	// network) is scaled per image alone.
	b1, b2 := min(micro, probeMaxBatch/4), min(micro, probeMaxBatch)
	t1, err := timeSteps(b1)
	if err != nil {
		return nil, err
	}
	perImage, fixed := t1/time.Duration(b1), time.Duration(0)
	b := b1
	if b2 > b1 && t1 < time.Second {
		t2, err := timeSteps(b2)
		if err != nil {
			return nil, err
		}
		b = b2
		perImage = t2 / time.Duration(b2)
		if slope := (t2 - t1) / time.Duration(b2-b1); slope > 0 && t2 > slope*time.Duration(b2) {
			perImage, fixed = slope, t2-slope*time.Duration(b2)
		}
	}
	e := &Estimate{Steps: r.steps, ProbeImages: b, PerImage: perImage,
		PerStep: time.Duration(r.o.BatchSplit)*fixed + perImage*time.Duration(r.o.Batch)}
	e.Train = e.PerStep * time.Duration(r.steps)
	if testSet != nil && testSet.Len() > 0 {
		fwd, err := ProbeForward(ctx, r.cfg, params, r.o.Resolution, min(r.o.EvalBatch, probeMaxBatch))
		if err != nil {
			return nil, err
		}
		e.Eval = fwd * time.Duration(testSet.Len())
	}
	e.Total = e.Train + e.Eval
	e.Probe = time.Since(t0)
	return e, nil
}

// ProbeForward times the native forward pass of cfg/params on a batch of b
// images of res×res pixels (after one warm-up batch) and returns the time
// per image.
func ProbeForward(ctx context.Context, cfg model.Config, params model.Params, res, b int) (time.Duration, error) {
	if b < 1 {
		b = 1
	}
	m, err := model.New(cfg, params)
	if err != nil {
		return 0, fmt.Errorf("train: estimate: %w", err)
	}
	x := nn.New(b, 3, res, res)
	per, err := TimeSteps(ctx, probeBudget/2, maxProbeSteps, func(int) error {
		m.Forward(x)
		return nil
	})
	return per / time.Duration(b), err
}

// TimeSteps times step: one untimed warm-up call, step(0) (packing,
// workspaces), then step(1), step(2), ... until most timed calls have run
// or budget has passed since the first of them (at least one runs). It
// returns the mean time of a timed call, the first error a call returns, or
// ctx's error (checked before each call) when ctx ends.
func TimeSteps(ctx context.Context, budget time.Duration, most int, step func(i int) error) (time.Duration, error) {
	call := func(i int) error {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("train: estimate: %w", err)
		}
		return step(i)
	}
	if err := call(0); err != nil {
		return 0, err
	}
	start, n := time.Now(), 0
	for n < max(most, 1) && (n == 0 || time.Since(start) < budget) {
		if err := call(n + 1); err != nil {
			return 0, err
		}
		n++
	}
	return time.Since(start) / time.Duration(n), nil
}
