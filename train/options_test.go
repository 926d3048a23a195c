package train

import "testing"

// TestOptionsZeroDefaultNegativeOff: Warmup 0 is the upstream Steps/18,
// negative is none, a positive count is taken as is; BatchSplit 0 is 1.
// Options keeps the value as given (config.json resumes the same way).
func TestOptionsZeroDefaultNegativeOff(t *testing.T) {
	for _, tc := range []struct{ warmup, want int }{{0, 5}, {-1, 0}, {7, 7}} {
		o := DefaultOptions()
		o.Arch, o.Steps, o.Batch, o.BatchSplit, o.Resolution, o.OutDir = "tiny", 90, 8, 0, 24, t.TempDir()
		o.Warmup = tc.warmup
		r, err := newRunner(o, synth{n: 16, classes: 2, seed: 1})
		if err != nil {
			t.Fatal(err)
		}
		if r.key.Warmup != tc.want || r.o.Warmup != tc.warmup || r.o.BatchSplit != 1 {
			t.Errorf("warmup %d: %d steps (kept %d), batch split %d; want %d steps", tc.warmup, r.key.Warmup, r.o.Warmup, r.o.BatchSplit, tc.want)
		}
		if lr := r.sched(0); (tc.want == 0) != (lr == r.o.LR) {
			t.Errorf("warmup %d: lr at step 0 is %g of %g", tc.warmup, lr, r.o.LR)
		}
	}
}

// TestOptionsDefaults: a zero field takes its default (the run key holds
// the values used), a negative Momentum or WeightDecay is none, negative
// lengths and sizes are errors, and empty Decays (not nil) means no decay.
func TestOptionsDefaults(t *testing.T) {
	ds := synth{n: 16, classes: 2, seed: 1}
	zero := Options{Arch: "tiny", OutDir: t.TempDir()}
	r, err := newRunner(zero, ds)
	if err != nil {
		t.Fatal(err)
	}
	k := r.key
	if k.Batch != 128 || k.Resolution != 32 || k.Momentum != 0.9 || k.WeightDecay != 1e-4 || r.o.EvalBatch != 256 ||
		k.Steps != 1 || k.LR != UpstreamLR(128) {
		t.Errorf("zero options resolved to %+v (eval batch %d)", k, r.o.EvalBatch)
	}
	if r.o.Momentum != 0 || r.o.WeightDecay != 0 {
		t.Errorf("options changed as given: momentum %g, weight decay %g", r.o.Momentum, r.o.WeightDecay)
	}

	off := zero
	off.Momentum, off.WeightDecay, off.Decays, off.Steps = -1, -1, []int{}, 30
	if r, err = newRunner(off, ds); err != nil {
		t.Fatal(err)
	}
	if r.key.Momentum != 0 || r.key.WeightDecay != 0 || r.key.Decays != "none" {
		t.Errorf("negative momentum and decay, empty decays: %+v", r.key)
	}
	if lr0, lr29 := r.sched(r.key.Warmup), r.sched(29); lr0 != lr29 {
		t.Errorf("no decays: lr %g after warmup, %g at the end", lr0, lr29)
	}

	for name, o := range map[string]Options{
		"steps":      {Steps: -1},
		"epochs":     {Epochs: -2},
		"batch":      {Batch: -8},
		"lr":         {LR: -0.1},
		"eval batch": {EvalBatch: -1},
		"resolution": {Resolution: 8},
	} {
		o.Arch, o.OutDir = "tiny", t.TempDir()
		if _, err := newRunner(o, ds); err == nil {
			t.Errorf("%s: negative or too small accepted", name)
		}
	}
}
