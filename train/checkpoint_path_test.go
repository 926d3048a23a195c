package train

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestCheckpointPath: only CheckpointDir/<plain file name> resolves, to a
// regular file or nothing yet.
func TestCheckpointPath(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, CheckpointDir), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc/passwd", filepath.Join(dir, CheckpointDir, "link.npz")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, CheckpointDir, "fifo.npz"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"checkpoint/weights-00000005.npz", "checkpoint/.hidden"} {
		p, err := CheckpointPath(dir, name)
		if err != nil || p != filepath.Join(dir, name) {
			t.Errorf("%q: %q, %v", name, p, err)
		}
	}
	for _, name := range []string{
		"", "weights.npz", "../victim/weights.npz", "checkpoint/../../victim/weights.npz",
		"checkpoint/sub/w.npz", "/etc/passwd", "checkpoint/..", "checkpoint/.", "checkpoint/",
		"other/w.npz", `checkpoint\..\w.npz`, "checkpoint/link.npz", "checkpoint/fifo.npz",
	} {
		if p, err := CheckpointPath(dir, name); !errors.Is(err, ErrBadCheckpoint) {
			t.Errorf("%q resolved to %q, %v; want ErrBadCheckpoint", name, p, err)
		}
	}
}

// TestResumeRefusesPathsOutsideTheRun (issue 12, item 3): a checkpoint.json
// naming files outside the run folder is refused on resume; the files it
// names are neither read nor removed; stale temporary files of a killed
// run are removed (item 10).
func TestResumeRefusesPathsOutsideTheRun(t *testing.T) {
	ds := synth{n: 16, classes: 4, seed: 1}
	opts := DefaultOptions()
	opts.Arch, opts.Steps, opts.Batch, opts.Resolution, opts.PreSize, opts.Seed = "tiny", 4, 8, 24, 28, 7
	opts.EvalBatch = 16
	root := t.TempDir()
	opts.OutDir = filepath.Join(root, "run")
	ctx := interruptAt(&opts, 2)
	if _, err := Run(ctx, opts, ds, ds); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled run: %v", err)
	}
	opts.Progress, opts.Resume = nil, true
	// The victim: a copy of the run's own checkpoint files outside it.
	ck, err := readCheckpoint(opts.OutDir)
	if err != nil {
		t.Fatal(err)
	}
	victim := filepath.Join(root, "victim")
	if err := os.MkdirAll(victim, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{ck.Weights, ck.Optimizer} {
		b, err := os.ReadFile(filepath.Join(opts.OutDir, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(victim, filepath.Base(f)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	good := *ck
	bad := *ck
	bad.Weights = filepath.Join("..", "victim", filepath.Base(ck.Weights))
	bad.Optimizer = filepath.Join("..", "victim", filepath.Base(ck.Optimizer))
	writeRecord(t, opts.OutDir, bad)
	if _, err := Run(context.Background(), opts, ds, ds); !errors.Is(err, ErrBadCheckpoint) || !strings.Contains(err.Error(), "../victim") {
		t.Fatalf("resume from a record naming ../victim: %v, want ErrBadCheckpoint", err)
	}
	// Saving a checkpoint after such a record does not remove its files.
	// (It does remove the genuine checkpoint's, which its record does not
	// name: they are put back for the resume below.)
	payload := map[string][]byte{}
	for _, f := range []string{ck.Weights, ck.Optimizer} {
		payload[f], _ = os.ReadFile(filepath.Join(opts.OutDir, f))
	}
	if err := saveCheckpoint(opts.OutDir, Checkpoint{Step: 9, Seed: 1}, nil, nil); err != nil {
		t.Fatal(err)
	}
	for f, b := range payload {
		if err := os.WriteFile(filepath.Join(opts.OutDir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{ck.Weights, ck.Optimizer} {
		if _, err := os.Stat(filepath.Join(victim, filepath.Base(f))); err != nil {
			t.Errorf("victim file removed: %v", err)
		}
	}
	// A step outside the run (a damaged record) is refused before the
	// metrics are trimmed to it or data is indexed by it.
	metrics, _ := os.ReadFile(filepath.Join(opts.OutDir, MetricsFile))
	for _, step := range []int{-3, opts.Steps + 1} {
		damaged := good
		damaged.Step = step
		writeRecord(t, opts.OutDir, damaged)
		if _, err := Run(context.Background(), opts, ds, ds); !errors.Is(err, ErrBadCheckpoint) || !strings.Contains(err.Error(), "completed steps") {
			t.Errorf("resume from step %d: %v, want ErrBadCheckpoint", step, err)
		}
		if now, _ := os.ReadFile(filepath.Join(opts.OutDir, MetricsFile)); len(metrics) == 0 || string(now) != string(metrics) {
			t.Errorf("resume from step %d changed %s: %d bytes -> %d", step, MetricsFile, len(metrics), len(now))
		}
	}
	// The genuine record resumes, and stale temporary files go.
	writeRecord(t, opts.OutDir, good)
	stale := []string{
		filepath.Join(opts.OutDir, ".checkpoint.json.123456.tmp"),
		filepath.Join(opts.OutDir, CheckpointDir, ".weights-00000004.npz.98765.tmp"),
		filepath.Join(opts.OutDir, CheckpointDir, ".optimizer-00000004.npz.1.tmp"),
	}
	for _, p := range stale {
		if err := os.WriteFile(p, []byte("torn"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sum, err := Run(context.Background(), opts, ds, ds)
	if err != nil {
		t.Fatal(err)
	}
	if sum.ResumedAt != 2 {
		t.Errorf("resumed at %d, want 2", sum.ResumedAt)
	}
	for _, p := range stale {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("stale %s still there (%v)", p, err)
		}
	}
}

func writeRecord(t *testing.T, dir string, ck Checkpoint) {
	t.Helper()
	b, _ := json.Marshal(ck)
	if err := os.WriteFile(filepath.Join(dir, CheckpointFile), b, 0o644); err != nil {
		t.Fatal(err)
	}
}
