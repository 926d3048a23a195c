package main

import (
	"fmt"
	"io"
	"time"

	"github.com/bitrun/bitrun/finetune"
	"github.com/bitrun/bitrun/train"
)

// longRun is the estimated wall time above which train and finetune say
// which flags shorten the run.
const longRun = 10 * time.Minute

// fmtDur rounds d for people: seconds under an hour, minutes above.
func fmtDur(d time.Duration) string {
	if d < time.Hour {
		return d.Round(time.Second).String()
	}
	return d.Round(time.Minute).String()
}

// printTrainEstimate prints train's estimate on w and, for a long run, the
// flags that shorten it.
func printTrainEstimate(w io.Writer, o train.Options, e *train.Estimate) {
	fmt.Fprintf(w, "estimated wall time %s: %d steps x %s (batch %d, %s/image at %d px, timed on %d images) + test evaluation %s\n",
		fmtDur(e.Total), e.Steps, e.PerStep.Round(time.Millisecond), o.Batch, e.PerImage.Round(10*time.Microsecond),
		o.Resolution, e.ProbeImages, fmtDur(e.Eval))
	if e.Total <= longRun {
		return
	}
	fmt.Fprintf(w, "that is long; to shorten it:\n")
	if fit := stepsWithin(longRun-e.Eval, e.PerStep); fit > 0 && fit < e.Steps {
		fmt.Fprintf(w, "  --steps %d (or fewer --epochs) fits about %s\n", fit, fmtDur(longRun))
	}
	if o.Resolution > 32 {
		fmt.Fprintf(w, "  --resolution 32 (or the images' native side): cost grows with the square of the resolution\n")
	}
	if o.Arch != "small" && o.Arch != "tiny" {
		fmt.Fprintf(w, "  --arch small or tiny: far fewer operations per image than %s\n", o.Arch)
	}
}

// printFinetuneEstimate prints finetune's estimate on w and, for a long
// run, the flags that shorten it. native is the side of the training
// images.
func printFinetuneEstimate(w io.Writer, o finetune.Options, e *finetune.Estimate, native int) {
	fmt.Fprintf(w, "estimated wall time %s:", fmtDur(e.Total))
	if e.Cache > 0 {
		fmt.Fprintf(w, " trunk cache %s +", fmtDur(e.Cache))
	}
	fmt.Fprintf(w, " %d steps %s + test evaluation %s", e.Steps, fmtDur(e.Train), fmtDur(e.Eval))
	if e.Adapt > 0 {
		fmt.Fprintf(w, " + adaptation %s", fmtDur(e.Adapt))
	}
	fmt.Fprintln(w)
	if e.Total <= longRun {
		return
	}
	fmt.Fprintf(w, "that is long on this machine; to make it practical:\n")
	if o.Mode == finetune.ModeFull {
		fmt.Fprintf(w, "  --train head: trains the pre-head GroupNorm and the head on cached trunk activations (one trunk pass per view)\n")
	}
	if e.Steps > 0 && e.Train > 0 {
		perStep := e.Train / time.Duration(e.Steps)
		if fit := stepsWithin(longRun-e.Total+e.Train, perStep); fit > 0 && fit < e.Steps {
			fmt.Fprintf(w, "  --steps %d fits about %s (warmup and decays are rescaled)\n", fit, fmtDur(longRun))
		}
	}
	if crop := o.Rule.Crop; native > 0 && native < crop {
		fmt.Fprintf(w, "  --resolution %d --resize %d: the images' native side instead of %d (cost ~ resolution squared: about %.0fx less)\n",
			native, native, crop, float64(crop*crop)/float64(native*native))
	}
	if o.ExamplesPerClass == 0 {
		fmt.Fprintf(w, "  --examples-per-class K: few-shot, K images per class (the HyperRule then picks a short schedule)\n")
	}
	if o.Batch > 128 {
		fmt.Fprintf(w, "  --batch 128: a quarter of the work per step (lr scales with batch/512)\n")
	}
}

// stepsWithin is the number of steps of perStep that fit in budget.
func stepsWithin(budget, perStep time.Duration) int {
	if budget <= 0 || perStep <= 0 {
		return 0
	}
	return int(budget / perStep)
}
