package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/bitrun/bitrun/finetune"
	"github.com/bitrun/bitrun/train"
)

// TestEstimateHints (issue 13): a long estimated run says which flags make
// it practical, with a --steps figure that fits; a short one only prints
// the estimate.
func TestEstimateHints(t *testing.T) {
	var b bytes.Buffer
	o := finetune.Options{Mode: finetune.ModeFull, Batch: 512, Rule: finetune.HyperRule{Crop: 128, Steps: 10000}}
	e := &finetune.Estimate{Mode: finetune.ModeFull, Steps: 10000, Train: 41 * time.Hour, Eval: time.Minute, Total: 41*time.Hour + time.Minute}
	printFinetuneEstimate(&b, o, e, 28)
	out := b.String()
	for _, w := range []string{"estimated wall time 41h1m", "--train head", "--steps 36 ", "--resolution 28 --resize 28", "--examples-per-class", "--batch 128"} {
		if !strings.Contains(out, w) {
			t.Errorf("long fine-tune: output lacks %q:\n%s", w, out)
		}
	}
	b.Reset()
	e = &finetune.Estimate{Mode: finetune.ModeFull, Steps: 600, Train: time.Minute, Eval: 3 * time.Second, Total: 63 * time.Second}
	printFinetuneEstimate(&b, o, e, 28)
	if out := b.String(); !strings.Contains(out, "estimated wall time 1m3s") || strings.Contains(out, "--steps") {
		t.Errorf("short fine-tune: %q", out)
	}
	b.Reset()
	to := train.Options{Arch: "R50x1", Batch: 128, Resolution: 128}
	te := &train.Estimate{Steps: 10000, ProbeImages: 32, PerImage: time.Millisecond, PerStep: 128 * time.Millisecond,
		Train: 1280 * time.Second, Eval: 10 * time.Second, Total: 1290 * time.Second}
	printTrainEstimate(&b, to, te)
	for _, w := range []string{"estimated wall time 21m30s", "--steps 4609 ", "--resolution 32", "--arch small"} {
		if !strings.Contains(b.String(), w) {
			t.Errorf("long train: output lacks %q:\n%s", w, b.String())
		}
	}
}
