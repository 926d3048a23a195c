package finetune

import (
	"context"
	"errors"
	"os"
	"testing"
)

// TestEstimateRun (issue 13): both modes estimate every phase from a probe
// without touching the run folder; head mode's cache scales with the views.
func TestEstimateRun(t *testing.T) {
	trainSet, testSet := newSynth(24, 10), newSynth(16, 11)
	for _, mode := range []string{ModeFull, ModeHead} {
		t.Run(mode, func(t *testing.T) {
			o := runOpts(t, mode)
			o.AdaptResolution = 28
			e, err := EstimateRun(context.Background(), o, trainSet, testSet)
			if err != nil {
				t.Fatal(err)
			}
			if e.Mode != mode || e.Steps != o.Rule.Steps || e.Train <= 0 || e.Eval <= 0 || e.Adapt <= 0 {
				t.Fatalf("estimate %+v", e)
			}
			if (mode == ModeHead) != (e.Cache > 0) {
				t.Errorf("%s: cache estimate %v", mode, e.Cache)
			}
			if e.Total != e.Cache+e.Train+e.Adapt+e.Eval {
				t.Errorf("estimate does not add up: %+v", e)
			}
			if _, err := os.Stat(o.OutDir); err == nil {
				if ents, _ := os.ReadDir(o.OutDir); len(ents) > 0 {
					t.Errorf("the estimate wrote into the run folder: %v", ents)
				}
			} else if !errors.Is(err, os.ErrNotExist) {
				t.Fatal(err)
			}
		})
	}
}
