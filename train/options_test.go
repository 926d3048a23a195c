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
