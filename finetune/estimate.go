package finetune

import (
	"context"
	"fmt"
	"time"

	"github.com/bitrun/bitrun/data"
	"github.com/bitrun/bitrun/model"
	"github.com/bitrun/bitrun/nn"
	"github.com/bitrun/bitrun/train"
)

// Estimate is the predicted wall time of a fine-tuning run, from a short
// timed probe of its phases on the native engine.
type Estimate struct {
	Mode  string        `json:"mode"`
	Steps int           `json:"steps"`
	Cache time.Duration `json:"cache"` // head mode: trunk activations of every cached view
	Train time.Duration `json:"train"` // the training steps
	Adapt time.Duration `json:"adapt"` // resolution adaptation: its cache, steps and extra evaluations
	Eval  time.Duration `json:"eval"`  // the test evaluation at the training resolution
	Total time.Duration `json:"total"`
	Probe time.Duration `json:"probe"` // wall time the probe itself took
}

// EstimateRun predicts the wall time of Run(opts, trainSet, testSet) without
// writing anything: full mode times a few training steps of at most 16
// images (train.EstimateRun); head mode times the trunk's forward pass per
// cached view and a few head steps on synthetic activations; the test
// evaluations are timed forward passes. The trunk is timed on the native
// engine even when the run would use ONNX Runtime (about as fast on CPU).
func EstimateRun(ctx context.Context, opts Options, trainSet, testSet data.Dataset) (*Estimate, error) {
	t0 := time.Now()
	r, err := newRunner(opts, trainSet, testSet)
	if err != nil {
		return nil, err
	}
	o, h := r.o, r.rec.Rule
	params := model.ReplaceHead(o.Source, r.classes)
	e := &Estimate{Mode: o.Mode, Steps: h.Steps}
	fwdAt := map[int]time.Duration{}
	forward := func(res int) (time.Duration, error) {
		if d, ok := fwdAt[res]; ok {
			return d, nil
		}
		d, err := train.ProbeForward(ctx, r.cfg, params, res, min(o.EvalBatch, 16))
		if err != nil {
			return 0, err
		}
		fwdAt[res] = d
		return d, nil
	}
	switch o.Mode {
	case ModeFull:
		te, err := train.EstimateRun(ctx, r.trainOptions(params), r.ds, nil)
		if err != nil {
			return nil, fmt.Errorf("finetune: %w", err)
		}
		e.Train = te.Train
	case ModeHead:
		fwd, err := forward(h.Crop)
		if err != nil {
			return nil, err
		}
		e.Cache = fwd * time.Duration(r.ds.Len()*o.Views)
		step, err := r.probeHeadStep(ctx, params, h.Crop)
		if err != nil {
			return nil, err
		}
		e.Train = step * time.Duration(h.Steps)
	}
	fwd, err := forward(h.Crop)
	if err != nil {
		return nil, err
	}
	e.Eval = fwd * time.Duration(testSet.Len())
	if res := o.AdaptResolution; res > 0 {
		afwd, err := forward(res)
		if err != nil {
			return nil, err
		}
		images := min(r.ds.Len(), o.AdaptSteps*o.Batch)
		evals := 1 // after adaptation
		if res != h.Crop {
			evals++ // before, at the new resolution
		}
		step, err := r.probeHeadStep(ctx, params, res)
		if err != nil {
			return nil, err
		}
		e.Adapt = afwd*time.Duration(images+evals*testSet.Len()) + step*time.Duration(o.AdaptSteps)
	}
	e.Total = e.Cache + e.Train + e.Adapt + e.Eval
	e.Probe = time.Since(t0)
	return e, nil
}

// probeHeadStep times one head-training step at the run's batch on
// synthetic trunk activations of the shape the trunk gives at res.
func (r *runner) probeHeadStep(ctx context.Context, params model.Params, res int) (time.Duration, error) {
	m, err := model.New(r.cfg, params)
	if err != nil {
		return 0, fmt.Errorf("finetune: estimate: %w", err)
	}
	act := m.Trunk(nn.New(1, 3, res, res))
	rows := min(r.o.Batch, 256)
	c := &actCache{labels: make([]int, rows), images: rows, shape: [3]int{act.Shape[1], act.Shape[2], act.Shape[3]}}
	c.per = c.shape[0] * c.shape[1] * c.shape[2]
	c.data = make([]float32, rows*c.per)
	for i := range c.labels {
		c.labels[i] = i % r.classes
		copy(c.data[i*c.per:(i+1)*c.per], act.Data)
	}
	// The probe must not touch the run's head: train copies of it.
	p := model.Params{}
	for k, v := range params {
		p[k] = v
	}
	for _, name := range headNames {
		p[name] = params[name].Clone()
	}
	t := newHeadTrainer(r.cfg, p, c, r.o.Batch, r.rec.Rule.MixupAlpha, true, r.o.Seed, r.schedule(r.rec.Rule), r.rec.Rule.Momentum)
	return train.TimeSteps(ctx, 200*time.Millisecond, 4, func(i int) error {
		_, _, _, err := t.step(i)
		return err
	})
}
