package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/bitrun/bitrun/nn"
	"github.com/bitrun/bitrun/train"
	"github.com/spf13/cobra"
)

func newTrainCmd() *cobra.Command {
	d := train.DefaultOptions()
	c := trainOptions{o: d}
	o := &c.o
	cmd := &cobra.Command{
		Use:   "train --data PATH --out RUNDIR [flags]",
		Short: "Train a BiT network from scratch with the native engine (BiT upstream recipe)",
		Long: `Train a BiT network (ResNet-v2, GroupNorm, Weight Standardization) from
scratch on the CPU with bitrun's native engine, following the BiT upstream
recipe: SGD with momentum 0.9, lr 0.03 x batch/256, weight decay 1e-4 on the
kernels, linear warmup (default 1/18 of the schedule, as 5 of 90 epochs), lr
x0.1 at 1/3, 2/3 and 8/9 of the schedule, random crop and horizontal flip.

Augmentations are flags with the recipe as default. Horizontal flips are
wrong for digits: train MNIST with --flip=false.

--data is a dataset folder (IDX files as MNIST/Fashion-MNIST, or an image
folder with one sub-folder per class), or "mnist" for the MNIST copy in the
GoMNIST Go module. Images are fed as 3 channels (gray replicated).

The run folder (--out) receives metrics.jsonl (one JSON line per step),
config.json, checkpoints (every --checkpoint-every steps, and on Ctrl-C),
and at the end weights.npz and summary.json (test-split accuracy included).
--resume continues a killed run to the same final weights as an uninterrupted
run: data order and augmentation are pure functions of (--seed, step).

Progress (step, loss, lr, images/s, ETA) goes to stderr; the summary to stdout.`,
		Example: `  bitrun train --data mnist --arch small --resolution 32 --pre-size 36 --flip=false \
      --epochs 3 --batch 128 --out /work/runs/mnist-small
  bitrun train --data mnist --flip=false --out /work/runs/mnist-small --resume`,
		Args: cobra.NoArgs,
		RunE: runE(bound(&c, trainFlags), runTrain),
	}
	f := cmd.Flags()
	// The settings with a configuration key (train.NAME), read by trainFlags.
	f.String("data", "", `dataset folder, or "mnist" (GoMNIST module data)`)
	f.String("arch", d.Arch, "architecture: tiny, small, R50x1, R101x3, ...")
	f.Int("batch", d.Batch, "logical batch size")
	f.Int("batch-split", d.BatchSplit, "micro-batches per step (gradient accumulation; must divide --batch)")
	f.Int("resolution", d.Resolution, "train crop and test size (pixels)")
	f.Uint64("seed", d.Seed, "seed of initialisation, data order and augmentation")
	f.Int("checkpoint-every", 0, "save a checkpoint every N steps (0: only on Ctrl-C and at the end)")
	f.String("gemm", "", "GEMM backend: auto, go, openblas, gonum (default $BITRUN_GEMM or auto)")
	for _, name := range []string{"data", "arch", "batch", "batch-split", "resolution", "seed", "checkpoint-every", "gemm"} {
		bindKey(cmd, "train."+strings.ReplaceAll(name, "-", "_"), name)
	}
	// The others, bound to their options.
	f.Float64Var(&o.Epochs, "epochs", d.Epochs, "schedule length in epochs (ignored when --steps is set)")
	f.IntVar(&o.Steps, "steps", 0, "schedule length in steps (overrides --epochs)")
	f.IntVar(&o.PreSize, "pre-size", 0, "resize before the random crop (0: 5/4 of --resolution, BiT's 160 for 128)")
	f.BoolVar(&o.Crop, "crop", d.Crop, "random crop (recipe default)")
	f.BoolVar(&o.Flip, "flip", d.Flip, "random horizontal flip (recipe default; use --flip=false for digits)")
	f.Float64Var(&o.LR, "lr", 0, "base learning rate (0: 0.03 x batch/256)")
	f.IntVar(&o.Warmup, "warmup", d.Warmup, "linear warmup steps (0: 1/18 of the schedule; negative: none)")
	f.Float64Var(&o.Momentum, "momentum", d.Momentum, "SGD momentum (0: 0.9; negative: none)")
	f.Float64Var(&o.WeightDecay, "weight-decay", d.WeightDecay, "weight decay on conv and head kernels (0: 1e-4; negative: none)")
	f.Float64Var(&o.MixupAlpha, "mixup", 0, "MixUp alpha (0: off)")
	f.StringVar(&o.Freeze, "freeze", d.Freeze, "trainable parameters: all, head, head+gn")
	f.BoolVar(&o.Resume, "resume", false, "continue the run in --out from its checkpoint")
	f.IntVar(&o.EvalBatch, "eval-batch", d.EvalBatch, "batch size of the final test evaluation")
	f.StringVar(&o.OutDir, "out", "", "run folder (created)")
	f.BoolVar(&c.asJSON, "json", false, "print the summary as JSON")
	f.BoolVar(&c.dryRun, "dry-run", false, "print the estimated wall time (a short timed probe) and stop")
	return cmd
}

// trainOptions is what train runs: bound to its flags, completed from the
// configuration (and, with --resume, the run's config.json) by trainFlags
// and checked by validate.
type trainOptions struct {
	o              train.Options
	data           string
	gemm           string // "": $BITRUN_GEMM or auto
	asJSON, dryRun bool
}

// trainFlags completes train's options with the configuration keys; with
// --resume, the settings not given take the run's recorded values.
func trainFlags(cmd *cobra.Command, _ []string, c *trainOptions) error {
	o := &c.o
	c.data = cfg.GetString("train.data")
	o.Arch = cfg.GetString("train.arch")
	err := configInts(cmd,
		intKey{"train.batch", 1, math.MaxInt, &o.Batch},
		intKey{"train.batch_split", 1, math.MaxInt, &o.BatchSplit},
		intKey{"train.resolution", minResolution, maxResolution, &o.Resolution},
	)
	if err != nil {
		return err
	}
	if o.Seed, err = configUint64(cmd, "train.seed"); err != nil {
		return err
	}
	if o.CheckpointEvery, err = configInt(cmd, "train.checkpoint_every", 0, math.MaxInt); err != nil {
		return err
	}
	if c.gemm, err = configEnum(cmd, "train.gemm", gemmNames...); err != nil {
		return err
	}
	o.Logger = cliLogger(cmd)
	if o.Resume {
		given := func(flag string) bool {
			if cmd.Flags().Changed(flag) {
				return true
			}
			key := "train." + strings.ReplaceAll(flag, "-", "_")
			_, bound := configKeys[key]
			return bound && configSource(cmd, key) != "default"
		}
		return resumeDefaults(o, given)
	}
	return nil
}

// validate checks the options against each other and selects the GEMM
// backend (usage errors).
func (c trainOptions) validate() error {
	o := c.o
	if err := checkRunFlags(c.data, o.OutDir, o.Batch, o.BatchSplit); err != nil {
		return err
	}
	if o.Steps < 0 || (o.Steps == 0 && o.Epochs <= 0) {
		return usagef("give --steps or a positive --epochs")
	}
	if _, err := train.Preset(o.Freeze); err != nil {
		return usageError{err}
	}
	return selectGEMM(c.gemm)
}

// runTrain trains (after an estimate, unless resuming): progress and the
// estimate on stderr, the summary on stdout.
func runTrain(ctx context.Context, c trainOptions, stdout, stderr io.Writer) error {
	o := c.o
	if !o.Resume && !c.dryRun && train.HasCheckpoint(o.OutDir) {
		// A state error, not a usage one: the error alone, exit 1.
		return fmt.Errorf("train: %s already holds a checkpoint: pass --resume to continue it, or choose another --out", o.OutDir)
	}
	trainSet, err := openDataset(c.data, "train")
	if err != nil {
		return err
	}
	testSet, err := openDataset(c.data, "test")
	if err != nil {
		return err
	}
	if !o.Resume || c.dryRun {
		est, err := train.EstimateRun(ctx, o, trainSet, testSet)
		if err != nil {
			return err
		}
		printTrainEstimate(stderr, o, est)
		if c.dryRun {
			return nil
		}
	}
	o.Progress = trainProgress(stderr)
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	o.Logger.Info("training", "arch", o.Arch, "data", c.data, "train", trainSet.Len(), "test", testSet.Len(),
		"classes", len(trainSet.Classes()), "gemm", nn.Backend().Name(), "out", o.OutDir)
	sum, err := train.Run(ctx, o, trainSet, testSet)
	if err != nil {
		return err
	}
	if c.asJSON {
		return writeJSON(stdout, sum)
	}
	out := stdout
	fmt.Fprintf(out, "arch           %s (%d params, %d classes)\n", sum.Arch, sum.Params, sum.Classes)
	fmt.Fprintf(out, "steps          %d (%.2f epochs of %d examples; resumed at %d)\n", sum.Steps, sum.Epochs, sum.Examples, sum.ResumedAt)
	fmt.Fprintf(out, "final loss     %.4f\n", sum.FinalLoss)
	fmt.Fprintf(out, "train time     %s (%.1f images/s, %s)\n", time.Duration(sum.TrainSeconds*float64(time.Second)).Round(time.Second), sum.ImagesPerSec, sum.GEMM)
	fmt.Fprintf(out, "test top-1     %.2f%% of %d\n", 100*sum.TestAccuracy, sum.TestExamples)
	fmt.Fprintf(out, "weights        %s\n", sum.Weights)
	return nil
}

// trainProgress prints train's progress on w (see stepProgress).
func trainProgress(w io.Writer) func(train.Progress) {
	return stepProgress(w, false, func(p train.Progress) string {
		if p.Phase == "eval" {
			return fmt.Sprintf("eval %d/%d  %.0f img/s  ETA %s", p.Step, p.Steps, p.ImagesPerSec, p.ETA.Round(time.Second))
		}
		return fmt.Sprintf("step %d/%d  epoch %.2f  loss %.4f  acc %.3f  lr %.4g  %.1f img/s  ETA %s",
			p.Step, p.Steps, p.Epoch, p.Loss, p.BatchAcc, p.LR, p.ImagesPerSec, p.ETA.Round(time.Second))
	})
}

// stepProgress prints the progress of a training run on w: on a terminal
// one line redrawn in place at most every 250 ms, otherwise a line every
// 10 s; always the final step's line and, with phases, the first line of
// each phase. line formats one report.
func stepProgress(w io.Writer, phases bool, line func(train.Progress) string) func(train.Progress) {
	tty := isTerminal(w)
	var last time.Time
	var lastPhase string
	return func(p train.Progress) {
		final := p.Step == p.Steps
		first := phases && p.Phase != lastPhase
		lastPhase = p.Phase
		if !first && !final && (time.Since(last) < 250*time.Millisecond || (!tty && time.Since(last) < 10*time.Second)) {
			return
		}
		last = time.Now()
		s := line(p)
		if tty {
			fmt.Fprintf(w, "\r\033[K%s", s)
			if final {
				fmt.Fprintln(w)
			}
			return
		}
		fmt.Fprintln(w, s)
	}
}

// resumeDefaults takes the options of the run in o.OutDir (its config.json)
// for every setting not given by a flag, environment variable or config
// file, so `train --resume --out RUN --data D` continues RUN as it was
// started; a setting given now that differs is reported by train.Run
// field by field. given reports whether a flag (or its configuration key)
// was set.
func resumeDefaults(o *train.Options, given func(flag string) bool) error {
	path := filepath.Join(o.OutDir, train.ConfigFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	var saved struct {
		Options train.Options `json:"options"`
	}
	if err := json.Unmarshal(b, &saved); err != nil {
		return fmt.Errorf("train: %s: %w", path, err)
	}
	s := saved.Options
	if !given("arch") {
		o.Arch = s.Arch
	}
	if !given("steps") && !given("epochs") {
		o.Steps = s.Steps
	}
	if !given("batch") {
		o.Batch = s.Batch
	}
	if !given("batch-split") {
		o.BatchSplit = s.BatchSplit
	}
	if !given("resolution") {
		o.Resolution = s.Resolution
	}
	if !given("pre-size") {
		o.PreSize = s.PreSize
	}
	if !given("crop") {
		o.Crop = s.Crop
	}
	if !given("flip") {
		o.Flip = s.Flip
	}
	if !given("lr") {
		o.LR = s.LR
	}
	if !given("warmup") {
		o.Warmup = s.Warmup
	}
	if !given("momentum") {
		o.Momentum = s.Momentum
	}
	if !given("weight-decay") {
		o.WeightDecay = s.WeightDecay
	}
	if !given("mixup") {
		o.MixupAlpha = s.MixupAlpha
	}
	if !given("freeze") {
		o.Freeze = s.Freeze
	}
	if !given("seed") {
		o.Seed = s.Seed
	}
	if !given("checkpoint-every") {
		o.CheckpointEvery = s.CheckpointEvery
	}
	return nil
}
