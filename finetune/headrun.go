package finetune

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/bitrun/bitrun/data"
	"github.com/bitrun/bitrun/internal/runfolder"
	"github.com/bitrun/bitrun/model"
	"github.com/bitrun/bitrun/nn"
	"github.com/bitrun/bitrun/train"
)

// headCheckpoint is checkpoint.json of a head-mode run.
type headCheckpoint struct {
	Step      int    `json:"step"` // completed steps
	Mode      string `json:"mode"`
	Weights   string `json:"weights"`   // head parameters (.npz), relative to the run folder
	Optimizer string `json:"optimizer"` // momentum buffers (.npz), relative
	RNG       string `json:"rng"`
}

// metricLine is one line of metrics.jsonl, in train's format (train.PlotMetrics
// draws it).
type metricLine = runfolder.Metric

func (r *runner) cacheProgress(phase string) func(done, total int) {
	if r.o.Progress == nil {
		return nil
	}
	t0 := time.Now()
	return func(done, total int) {
		el := time.Since(t0)
		ips := float64(done) / el.Seconds()
		r.o.Progress(train.Progress{Phase: phase, Step: done, Steps: total, ImagesPerSec: ips, Elapsed: el,
			ETA: time.Duration(float64(total-done) / ips * float64(time.Second))})
	}
}

// trainHead trains the pre-head GroupNorm affine and the head on cached trunk
// activations of Views augmented views per training image.
func (r *runner) trainHead(ctx context.Context, params model.Params, sum *Summary) (model.Params, error) {
	o, h, dir := r.o, r.rec.Rule, r.o.OutDir
	tr, err := newTrunk(r.cfg, params, o.Engine, dir, o.Runtime, r.log)
	if err != nil {
		return nil, err
	}
	defer tr.Close()
	sum.Engine = tr.Name()
	r.log.Info("caching trunk activations", "engine", tr.Name(), "images", r.ds.Len(), "views", o.Views, "resolution", h.Crop)
	t0 := time.Now()
	cache, err := buildCache(ctx, tr, r.ds, cacheSpec{views: o.Views, resize: h.Resize, res: h.Crop, flip: !o.NoFlip,
		seed: o.Seed, maxBytes: o.MaxCacheBytes, progress: r.cacheProgress("cache")})
	if err != nil {
		return nil, err
	}
	sum.CacheSeconds = time.Since(t0).Seconds()
	r.log.Info("cached", "rows", len(cache.labels), "shape", cache.shape, "MiB", len(cache.data)*4>>20, "seconds", sum.CacheSeconds)
	for _, name := range headNames {
		sum.Trainable += int64(params[name].Len())
	}
	t := newHeadTrainer(r.cfg, params, cache, o.Batch, h.MixupAlpha, r.rec.Replacement, o.Seed, r.schedule(h), h.Momentum)

	start := 0
	ck, err := readHeadCheckpoint(dir)
	switch {
	case err == nil && !o.Resume:
		return nil, fmt.Errorf("%w: %s", ErrRunExists, dir)
	case err == nil:
		if ck.Mode != ModeHead {
			return nil, fmt.Errorf("%w: checkpoint of a %q run", ErrResumeMismatch, ck.Mode)
		}
		if err := runfolder.CheckStep(dir, ck.Step, h.Steps); err != nil {
			return nil, fmt.Errorf("finetune: %w", err)
		}
		wp, err := runfolder.CheckpointPath(dir, ck.Weights)
		if err != nil {
			return nil, fmt.Errorf("finetune: %w", err)
		}
		op, err := runfolder.CheckpointPath(dir, ck.Optimizer)
		if err != nil {
			return nil, fmt.Errorf("finetune: %w", err)
		}
		w, err := model.LoadNPZ(wp)
		if err != nil {
			return nil, fmt.Errorf("finetune: checkpoint: %w", err)
		}
		v, err := model.LoadNPZ(op)
		if err != nil {
			return nil, fmt.Errorf("finetune: checkpoint: %w", err)
		}
		for _, name := range headNames {
			if w[name] == nil || !nn.SameShape(w[name].Shape, params[name].Shape) {
				return nil, fmt.Errorf("%w: checkpoint lacks %s or has another shape", ErrResumeMismatch, name)
			}
			params[name] = w[name]
		}
		t.sgd.Velocity = v
		start = ck.Step
		r.log.Info("resuming", "dir", dir, "step", start, "steps", h.Steps)
	case errors.Is(err, fs.ErrNotExist):
	default:
		return nil, err
	}
	metrics, err := runfolder.OpenMetrics(dir, start)
	if err != nil {
		return nil, fmt.Errorf("finetune: %w", err)
	}
	defer metrics.Close()
	checkpoint := func(step int) error {
		err := saveHeadCheckpoint(dir, step, params, t.sgd.Velocity)
		if err == nil {
			r.log.Info("checkpoint", "step", step)
		}
		return err
	}
	began := time.Now()
	b := o.Batch
	var loss float64
	for s := start; s < h.Steps; s++ {
		if err := ctx.Err(); err != nil {
			if cerr := checkpoint(s); cerr != nil {
				return nil, errors.Join(fmt.Errorf("finetune: interrupted at step %d: %w", s, err), cerr)
			}
			return nil, fmt.Errorf("finetune: interrupted at step %d (checkpoint saved; resume to continue): %w", s, err)
		}
		l, acc, lr, err := t.step(s)
		if err != nil {
			return nil, err
		}
		loss = l
		done := s + 1
		el := time.Since(began)
		ips := float64((done-start)*b) / el.Seconds()
		p := train.Progress{Phase: "train", Step: done, Steps: h.Steps, Epoch: float64(done*b) / float64(r.ds.Len()),
			Loss: l, BatchAcc: acc, LR: lr, ImagesPerSec: ips, Elapsed: el,
			ETA: time.Duration(float64(h.Steps-done) * float64(b) / ips * float64(time.Second))}
		if err := metrics.Append(metricLine{Step: done, Epoch: p.Epoch, Loss: l, BatchAcc: acc, LR: lr, ImagesPerSec: ips, Elapsed: el.Seconds()}); err != nil {
			return nil, fmt.Errorf("finetune: %w", err)
		}
		if o.Progress != nil {
			o.Progress(p)
		}
		if o.CheckpointEvery > 0 && done%o.CheckpointEvery == 0 && done < h.Steps {
			if err := checkpoint(done); err != nil {
				return nil, err
			}
		}
	}
	el := time.Since(began)
	if start < h.Steps {
		if err := checkpoint(h.Steps); err != nil {
			return nil, err
		}
		sum.ImagesPerSec = float64((h.Steps-start)*b) / el.Seconds()
	}
	sum.ResumedAt, sum.FinalLoss, sum.TrainSeconds = start, loss, el.Seconds()
	return params, nil
}

// adapt is the train-to-test resolution adaptation (FixRes for BiT): with the
// trunk frozen it fine-tunes the pre-head GroupNorm affine and the head on
// training images preprocessed the test way (square resize) at the target
// resolution (at most AdaptSteps×Batch of them, a seeded subset), with the
// HyperRule's schedule shape scaled to AdaptSteps and no
// MixUp (the step exists to match test-time statistics, not to regularise).
func (r *runner) adapt(ctx context.Context, params model.Params) (*AdaptSummary, error) {
	o, res := r.o, r.o.AdaptResolution
	t0 := time.Now()
	tr, err := newTrunk(r.cfg, params, o.Engine, o.OutDir, o.Runtime, r.log)
	if err != nil {
		return nil, err
	}
	defer tr.Close()
	// The schedule sees AdaptSteps×Batch examples: never cache more images
	// than that (a seeded subset; each is then seen about once).
	ds := r.ds
	if limit := o.AdaptSteps * o.Batch; limit < ds.Len() {
		ds = data.Subset(ds, data.Shuffled(ds.Len(), o.Seed^saltAdapt)[:limit])
	}
	r.log.Info("adapting to the test resolution", "resolution", res, "steps", o.AdaptSteps, "examples", ds.Len(), "engine", tr.Name())
	cache, err := buildCache(ctx, tr, ds, cacheSpec{views: 1, res: res, evalWay: true, maxBytes: o.MaxCacheBytes,
		progress: r.cacheProgress("adapt-cache")})
	if err != nil {
		return nil, err
	}
	h := r.rec.Rule.Scale(o.AdaptSteps)
	t := newHeadTrainer(r.cfg, params, cache, o.Batch, 0, o.Batch > ds.Len(), o.Seed+1, r.schedule(h), h.Momentum)
	a := &AdaptSummary{Resolution: res, Steps: h.Steps, Examples: ds.Len()}
	began := time.Now()
	for s := 0; s < h.Steps; s++ {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("finetune: adaptation interrupted (resume to redo it): %w", err)
		}
		l, acc, lr, err := t.step(s)
		if err != nil {
			return nil, err
		}
		a.FinalLoss = l
		if o.Progress != nil {
			done := s + 1
			el := time.Since(began)
			ips := float64(done*o.Batch) / el.Seconds()
			o.Progress(train.Progress{Phase: "adapt", Step: done, Steps: h.Steps, Loss: l, BatchAcc: acc, LR: lr,
				ImagesPerSec: ips, Elapsed: el, ETA: time.Duration(float64(h.Steps-done) * float64(o.Batch) / ips * float64(time.Second))})
		}
	}
	a.Seconds = time.Since(t0).Seconds()
	return a, nil
}

func readHeadCheckpoint(dir string) (*headCheckpoint, error) {
	var ck headCheckpoint
	if err := runfolder.ReadCheckpoint(dir, &ck); err != nil {
		return nil, fmt.Errorf("finetune: %w", err)
	}
	return &ck, nil
}

// saveHeadCheckpoint writes the head parameters and momentum buffers under
// new names, then the record pointing to them, then removes the previous
// files (runfolder.SaveCheckpoint): a crash at any point leaves a complete
// checkpoint.
func saveHeadCheckpoint(dir string, step int, params, velocity model.Params) error {
	ck := headCheckpoint{Step: step, Mode: ModeHead,
		Weights:   runfolder.CheckpointName("head", step),
		Optimizer: runfolder.CheckpointName("head-optimizer", step),
		RNG:       "derived: views, row order and MixUp are pure functions of (seed, position)"}
	head := model.Params{}
	for _, name := range headNames {
		head[name] = params[name]
	}
	if velocity == nil {
		velocity = model.Params{}
	}
	files := []runfolder.NPZ{{Name: ck.Weights, Params: head}, {Name: ck.Optimizer, Params: velocity}}
	if err := runfolder.SaveCheckpoint(dir, files, ck); err != nil {
		return fmt.Errorf("finetune: %w", err)
	}
	return nil
}
