package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bitrun/bitrun/finetune"
	"github.com/bitrun/bitrun/train"
)

// TestFinetuneCommand runs head-only fine-tuning with adaptation on a tiny
// image folder from an initialised tiny BiT, then the table.
func TestFinetuneCommand(t *testing.T) {
	ds := writeShapesFolder(t)
	tmp := t.TempDir()
	src := filepath.Join(tmp, "tiny.npz")
	initCheckpoint(t, src, "--arch", "tiny", "--classes", "5")
	out := filepath.Join(tmp, "run")
	args := []string{"finetune", "--data", ds, "--weights", src, "--train", "head", "--engine", "native",
		"--steps", "10", "--batch", "16", "--resolution", "16", "--views", "2", "--adapt-resolution", "auto",
		"--lr", "0.5", "--out", out, "--json", "--note", "test"}
	var sum finetune.Summary
	stderr := runJSON(t, &sum, args...)
	// The rule for 8 images of 20x20: 160->128, 500 steps; flags changed it.
	h := sum.Run.Rule
	if h.Steps != 10 || h.Warmup != 2 || len(h.Decays) != 3 || h.Decays[0] != 4 || h.Crop != 16 || h.Resize != 20 || h.BaseLR != 0.5 {
		t.Errorf("rule as used: %+v", h)
	}
	if sum.Run.LR != 0.5*16/512 || sum.Run.Classes != 2 || sum.Adapt == nil || sum.Adapt.Resolution != 20 || sum.TestRes != 20 {
		t.Errorf("summary: lr %g, %d classes, adapt %+v, test res %d", sum.Run.LR, sum.Run.Classes, sum.Adapt, sum.TestRes)
	}
	joined := strings.Join(sum.Run.Changes, "\n")
	for _, want := range []string{"steps: 500 -> 10", "resolution: resize 160, crop 128 -> resize 20, crop 16", "base lr", "batch: 512 -> 16", "why: test"} {
		if !strings.Contains(joined, want) {
			t.Errorf("changes lack %q:\n%s", want, joined)
		}
	}
	for _, want := range []string{"BiT-HyperRule for 8 training examples of 20x20", "schedule     10 steps, warmup 2", "with replacement", "train step 10/10"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	for _, f := range []string{finetune.RuleFile, finetune.ModelFile, finetune.ConfusionFile, train.CurveFile, train.WeightsFile} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("run folder lacks %s: %v", f, err)
		}
	}
	// A state error: the error alone, no usage text, exit 1 (issue 13).
	if _, stderr, code := runCaptured(t, args...); code != exitFailure || !strings.Contains(stderr, "resume") || strings.Contains(stderr, "Usage:") {
		t.Errorf("rerun without --resume: exit %d, stderr %q", code, stderr)
	}
	stdout, stderr, code := runCaptured(t, "finetune", "table", out)
	if code != exitOK || !strings.Contains(stdout, "run ") || !strings.Contains(stdout, "head (native)") {
		t.Errorf("table: exit %d\n%s%s", code, stdout, stderr)
	}
}

func TestFinetuneUsageErrors(t *testing.T) {
	ds := writeShapesFolder(t)
	out := filepath.Join(t.TempDir(), "run")
	cases := [][]string{
		{"finetune", "--weights", "x.npz", "--out", out},
		{"finetune", "--data", ds, "--weights", "x.npz"},
		{"finetune", "--data", ds, "--out", out},
		{"finetune", "--data", ds, "--weights", "x.npz", "--out", out, "--train", "trunk"},
		{"finetune", "--data", ds, "--weights", "x.npz", "--out", out, "--batch", "6", "--batch-split", "4"},
		{"finetune", "--data", ds, "--weights", "x.npz", "--out", out, "--engine", "gpu"},
	}
	for _, args := range cases {
		if _, stderr, code := runCaptured(t, args...); code != exitUsage {
			t.Errorf("%v: exit %d, want %d (stderr %q)", args[1:], code, exitUsage, stderr)
		}
	}
}

// TestPrintRuleCrop: the printed recipe says "no crop" when the resize is
// the crop size (data.TrainTensor then crops nothing).
func TestPrintRuleCrop(t *testing.T) {
	for _, tc := range []struct {
		resize, crop int
		want         string
	}{{160, 128, "resize 160, random crop 128 + flip; test at 128"}, {56, 56, "resize 56, no crop + flip; test at 56"}} {
		var b strings.Builder
		printRule(&b, finetune.Options{}, finetune.HyperRule{Resize: tc.resize, Crop: tc.crop}, 100, 28, 28)
		if !strings.Contains(b.String(), tc.want) {
			t.Errorf("resize %d crop %d: printed\n%s\nwant %q", tc.resize, tc.crop, b.String(), tc.want)
		}
	}
}
