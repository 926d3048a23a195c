package train

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestEstimateRun (issue 13): the estimate comes from a timed probe of the
// run's own step, scales with the schedule, writes nothing, and is of the
// order of the real run's training time.
func TestEstimateRun(t *testing.T) {
	ds := synth{n: 40, classes: 4, seed: 1}
	o := DefaultOptions()
	o.Arch, o.Steps, o.Batch, o.Resolution, o.PreSize, o.EvalBatch = "tiny", 6, 8, 24, 28, 16
	o.OutDir = filepath.Join(t.TempDir(), "run")
	e, err := EstimateRun(context.Background(), o, ds, ds)
	if err != nil {
		t.Fatal(err)
	}
	if e.Steps != 6 || e.PerImage <= 0 || e.PerStep <= 0 || e.Eval <= 0 || e.ProbeImages != 8 {
		t.Fatalf("estimate %+v", e)
	}
	if e.Train != e.PerStep*6 || e.Total != e.Train+e.Eval {
		t.Errorf("estimate does not add up: %+v", e)
	}
	if _, err := os.Stat(o.OutDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the estimate created the run folder: %v", err)
	}
	long := o
	long.Steps = 600
	el, err := EstimateRun(context.Background(), long, ds, nil)
	if err != nil {
		t.Fatal(err)
	}
	if el.Steps != 600 || el.Eval != 0 || el.Train < 20*e.Train {
		t.Errorf("600 steps: %v, 6 steps: %v", el.Train, e.Train)
	}
	// Against the real run: same order of magnitude (the machine is shared,
	// so the bound is loose).
	sum, err := Run(context.Background(), o, ds, nil)
	if err != nil {
		t.Fatal(err)
	}
	real := time.Duration(sum.TrainSeconds * float64(time.Second))
	if e.Train > 10*real+time.Second || real > 10*e.Train+time.Second {
		t.Errorf("estimated %v for a run that took %v", e.Train, real)
	}
	bad := o
	bad.Batch = -8
	if _, err := EstimateRun(context.Background(), bad, ds, nil); err == nil {
		t.Error("negative batch: no error")
	}
}
