package finetune

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bitrun/bitrun/train"
)

// TestHeadResumeRefusesPathsOutsideTheRun (issue 12, items 3 and 10): a
// head-mode checkpoint.json naming ../victim files is refused on resume and
// the victim files are neither read nor removed; stale temporary files of a
// killed run are removed when the run is resumed.
func TestHeadResumeRefusesPathsOutsideTheRun(t *testing.T) {
	trainSet, testSet := newSynth(24, 10), newSynth(16, 11)
	o := runOpts(t, ModeHead)
	ctx := interruptAt(&o, 3)
	if _, err := Run(ctx, o, trainSet, testSet); !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted run: %v", err)
	}
	o.Progress, o.Resume = nil, true
	ckPath := filepath.Join(o.OutDir, train.CheckpointFile)
	good, err := os.ReadFile(ckPath)
	if err != nil {
		t.Fatal(err)
	}
	var ck headCheckpoint
	if err := json.Unmarshal(good, &ck); err != nil {
		t.Fatal(err)
	}
	victim := filepath.Join(t.TempDir(), "victim")
	if err := os.MkdirAll(victim, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{ck.Weights, ck.Optimizer} {
		b, err := os.ReadFile(filepath.Join(o.OutDir, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(victim, filepath.Base(f)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	rel, err := filepath.Rel(o.OutDir, victim)
	if err != nil {
		t.Fatal(err)
	}
	bad := ck
	bad.Weights, bad.Optimizer = filepath.Join(rel, filepath.Base(ck.Weights)), filepath.Join(rel, filepath.Base(ck.Optimizer))
	b, _ := json.Marshal(bad)
	if err := os.WriteFile(ckPath, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Run(context.Background(), o, trainSet, testSet); !errors.Is(err, train.ErrBadCheckpoint) {
		t.Fatalf("resume from a record naming %s: %v, want train.ErrBadCheckpoint", rel, err)
	}
	// A checkpoint saved over the bad record leaves the victim alone (and
	// removes the genuine checkpoint's files, which its record does not
	// name: they are put back for the resume below).
	payload := map[string][]byte{}
	for _, f := range []string{ck.Weights, ck.Optimizer} {
		payload[f], _ = os.ReadFile(filepath.Join(o.OutDir, f))
	}
	if err := saveHeadCheckpoint(o.OutDir, 4, o.Source, nil); err != nil {
		t.Fatal(err)
	}
	for f, b := range payload {
		if err := os.WriteFile(filepath.Join(o.OutDir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{ck.Weights, ck.Optimizer} {
		if _, err := os.Stat(filepath.Join(victim, filepath.Base(f))); err != nil {
			t.Errorf("victim file removed: %v", err)
		}
	}
	if err := os.WriteFile(ckPath, good, 0o644); err != nil {
		t.Fatal(err)
	}
	stale := []string{
		filepath.Join(o.OutDir, ".checkpoint.json.4242.tmp"),
		filepath.Join(o.OutDir, train.CheckpointDir, ".head-00000004.npz.77.tmp"),
	}
	for _, p := range stale {
		if err := os.WriteFile(p, []byte("torn"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := Run(context.Background(), o, trainSet, testSet)
	if err != nil {
		t.Fatal(err)
	}
	if got.ResumedAt != 3 {
		t.Errorf("resumed at %d, want 3", got.ResumedAt)
	}
	for _, p := range stale {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("stale %s still there (%v)", p, err)
		}
	}
}

// TestDivergedRunStops (issue 12, item 6): a non-finite loss stops both
// modes with train.ErrDiverged, before final weights or a summary are
// written (was: exit 0 with 0.00% and a NaN checkpoint).
func TestDivergedRunStops(t *testing.T) {
	trainSet, testSet := newSynth(24, 10), newSynth(16, 11)
	for _, mode := range []string{ModeHead, ModeFull} {
		t.Run(mode, func(t *testing.T) {
			o := runOpts(t, mode)
			src := o.Source.Clone()
			for _, name := range src.Names() {
				if strings.HasSuffix(name, "gamma") || strings.HasSuffix(name, "scale") {
					src[name].Data[0] = float32(math.NaN())
				}
			}
			o.Source = src
			_, err := Run(context.Background(), o, trainSet, testSet)
			if !errors.Is(err, train.ErrDiverged) {
				t.Fatalf("err = %v, want train.ErrDiverged", err)
			}
			for _, f := range []string{train.WeightsFile, train.SummaryFile} {
				if _, err := os.Stat(filepath.Join(o.OutDir, f)); err == nil {
					t.Errorf("a diverged run wrote %s", f)
				}
			}
		})
	}
}

// TestTableReportsUnfinishedRuns (issue 12, item 10): finetune table over an
// interrupted run (no summary.json, or the training summary full mode
// leaves) prints it as unfinished next to the finished ones instead of
// failing; a folder that is no run is still an error.
func TestTableReportsUnfinishedRuns(t *testing.T) {
	trainSet, testSet := newSynth(24, 10), newSynth(16, 11)
	done := runOpts(t, ModeHead)
	if _, err := Run(context.Background(), done, trainSet, testSet); err != nil {
		t.Fatal(err)
	}
	cut := runOpts(t, ModeFull)
	ctx := interruptAt(&cut, 3)
	if _, err := Run(ctx, cut, trainSet, testSet); !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted run: %v", err)
	}
	// What an interrupted full fine-tune can leave: train's own summary.
	withTrainSummary := runOpts(t, ModeFull)
	ctx = interruptAt(&withTrainSummary, 3)
	if _, err := Run(ctx, withTrainSummary, trainSet, testSet); !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted run: %v", err)
	}
	if err := os.WriteFile(filepath.Join(withTrainSummary.OutDir, train.SummaryFile), []byte(`{"arch":"tiny","steps":6}`), 0o644); err != nil {
		t.Fatal(err)
	}
	var rows []Row
	for _, dir := range []string{done.OutDir, cut.OutDir, withTrainSummary.OutDir} {
		r, err := LoadRow(dir)
		if err != nil {
			t.Fatalf("%s: %v", dir, err)
		}
		rows = append(rows, r)
	}
	if rows[0].Unfinished != "" || rows[1].Unfinished == "" || rows[2].Unfinished == "" {
		t.Fatalf("unfinished: %q %q %q", rows[0].Unfinished, rows[1].Unfinished, rows[2].Unfinished)
	}
	var b strings.Builder
	if err := WriteTable(&b, rows); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(b.String(), "unfinished: "); n != 2 || !strings.Contains(b.String(), "%") {
		t.Fatalf("table:\n%s", b.String())
	}
	if _, err := LoadRow(t.TempDir()); err == nil {
		t.Error("a folder that is no run gave a row")
	}
}
