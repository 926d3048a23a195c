package main

import (
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bitrun/bitrun/train"
)

// writeShapesFolder writes a tiny image-folder dataset: split/class/*.png,
// the class being which half of the image is bright.
func writeShapesFolder(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	for _, split := range []string{"train", "test"} {
		for c, class := range []string{"left", "right"} {
			dir := filepath.Join(root, split, class)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 4; i++ {
				img := image.NewGray(image.Rect(0, 0, 20, 20))
				for y := 0; y < 20; y++ {
					for x := 0; x < 20; x++ {
						if (x < 10) == (c == 0) {
							img.SetGray(x, y, color.Gray{Y: uint8(200 + i*10)})
						}
					}
				}
				f, err := os.Create(filepath.Join(dir, string(rune('a'+i))+".png"))
				if err != nil {
					t.Fatal(err)
				}
				if err := png.Encode(f, img); err != nil {
					t.Fatal(err)
				}
				f.Close()
			}
		}
	}
	return root
}

func TestTrainCommand(t *testing.T) {
	ds := writeShapesFolder(t)
	out := filepath.Join(t.TempDir(), "run")
	args := []string{"train", "--data", ds, "--arch", "tiny", "--steps", "3", "--batch", "4", "--batch-split", "2",
		"--resolution", "16", "--pre-size", "20", "--flip=false", "--out", out, "--json"}
	var sum train.Summary
	stderr := runJSON(t, &sum, args...)
	if sum.Steps != 3 || sum.TestExamples != 8 || sum.Classes != 2 {
		t.Errorf("summary: %d steps, %d test examples, %d classes; want 3, 8, 2", sum.Steps, sum.TestExamples, sum.Classes)
	}
	if !strings.Contains(stderr, "step 3/3") {
		t.Errorf("stderr shows no progress line for the last step:\n%s", stderr)
	}
	for _, f := range []string{train.WeightsFile, train.SummaryFile, train.MetricsFile, train.CheckpointFile, train.ConfigFile} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("run folder lacks %s: %v", f, err)
		}
	}
	// The same folder again without --resume is a state error: the error
	// alone, no usage text, exit 1 (issue 13).
	if _, stderr, code := runCaptured(t, args...); code != exitFailure || !strings.Contains(stderr, "--resume") || strings.Contains(stderr, "Usage:") {
		t.Errorf("rerun without --resume: exit %d, stderr %q; want %d naming --resume, without usage", code, stderr, exitFailure)
	}
	// With --resume a finished run just re-evaluates, keeping its training figures.
	var again train.Summary
	runJSON(t, &again, append(args, "--resume")...)
	if again.FinalLoss != sum.FinalLoss || again.TrainSeconds != sum.TrainSeconds || again.TestAccuracy != sum.TestAccuracy {
		t.Errorf("re-evaluated summary: loss %g, train %gs, acc %g; want %g, %gs, %g",
			again.FinalLoss, again.TrainSeconds, again.TestAccuracy, sum.FinalLoss, sum.TrainSeconds, sum.TestAccuracy)
	}
	// --resume takes the run's saved settings: only --data and --out are needed
	// (issue 13) ...
	short := []string{"train", "--data", ds, "--out", out, "--resume", "--json"}
	if _, stderr, code := runCaptured(t, short...); code != exitOK {
		t.Errorf("resume with the saved settings: exit %d, stderr %s", code, stderr)
	}
	// ... and a setting given now that differs is listed alone, not as two structs.
	_, stderr, code := runCaptured(t, append(short, "--batch", "2", "--batch-split", "1")...)
	if code == exitOK || !strings.Contains(stderr, "batch: 4 -> 2") || strings.Contains(stderr, "arch:") || strings.Contains(stderr, "{") {
		t.Errorf("resume with another batch: exit %d, stderr %q; want only 'batch: 4 -> 2'", code, stderr)
	}
}

func TestTrainUsageErrors(t *testing.T) {
	cases := [][]string{
		{"train", "--out", "x"},
		{"train", "--data", "d"},
		{"train", "--data", "d", "--out", "x", "--batch", "10", "--batch-split", "3"},
		{"train", "--data", "d", "--out", "x", "--freeze", "trunk"},
		{"train", "--data", "d", "--out", "x", "--resolution", "8"},
	}
	for _, args := range cases {
		if _, stderr, code := runCaptured(t, args...); code != exitUsage {
			t.Errorf("%v: exit %d, want %d (stderr %s)", args, code, exitUsage, stderr)
		}
	}
}
