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
	// The estimate scales with the steps (two separate timings of a step
	// may differ several-fold on a loaded machine, so they are not
	// compared with each other).
	if el.Steps != 600 || el.Eval != 0 || el.PerStep <= 0 || el.Train != 600*el.PerStep {
		t.Errorf("600 steps: %v at %v per step", el.Train, el.PerStep)
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

// TestTimeSteps: one warm-up call, then at most `most` timed calls (fewer
// once the budget is spent, never none); errors and cancellation stop it.
func TestTimeSteps(t *testing.T) {
	ctx := context.Background()
	var calls []int
	per, err := TimeSteps(ctx, time.Hour, 3, func(i int) error {
		calls = append(calls, i)
		time.Sleep(time.Millisecond)
		return nil
	})
	if err != nil || len(calls) != 4 || calls[0] != 0 || calls[3] != 3 || per < time.Millisecond {
		t.Fatalf("calls %v, per %v, err %v; want 0..3 and >= 1ms", calls, per, err)
	}
	calls = nil
	if _, err := TimeSteps(ctx, 0, 5, func(i int) error { calls = append(calls, i); return nil }); err != nil || len(calls) != 2 {
		t.Errorf("zero budget: calls %v, err %v; want a warm-up and one timed call", calls, err)
	}
	boom := errors.New("boom")
	if _, err := TimeSteps(ctx, time.Hour, 3, func(i int) error {
		if i == 2 {
			return boom
		}
		return nil
	}); !errors.Is(err, boom) {
		t.Errorf("err = %v, want boom", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := TimeSteps(cctx, time.Hour, 3, func(int) error { t.Error("step ran after cancel"); return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: err = %v", err)
	}
}
