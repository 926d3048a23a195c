package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/bitrun/bitrun/data"
	"github.com/bitrun/bitrun/finetune"
	"github.com/bitrun/bitrun/model"
	"github.com/bitrun/bitrun/nn"
	"github.com/bitrun/bitrun/train"
	"github.com/spf13/cobra"
)

// newFinetuneCmd is the finetune command with its flags bound to c (main
// gives it fresh options, tests read them).
func newFinetuneCmd(c *finetuneOptions) *cobra.Command {
	o, r := &c.o, &c.recipe
	cmd := &cobra.Command{
		Use:   "finetune --data PATH (--model NAME | --weights FILE) --out RUNDIR [flags]",
		Short: "Transfer a pretrained BiT network to a dataset with the BiT-HyperRule",
		Long: `Fine-tune a pretrained BiT network on a labelled dataset with the BiT-HyperRule,
computed from the training set: resolution (images under 96x96: resize 160,
crop 128; else 448 -> 384, or 512 -> 480 with --resolution-rule code),
schedule (under 20k examples: 500 steps, warmup 100, lr x0.1 at 200/300/400;
under 500k: 10k steps, warmup 500, decays 3k/6k/9k; else 20k steps, warmup
500, decays 6k/12k/18k), MixUp alpha 0.1 from 20k examples, SGD momentum 0.9,
lr 0.003 at batch 512 (the run uses lr x batch/512), no weight decay, and a
zero-initialised head. The rule is printed on stderr and stored in
RUNDIR/hyperrule.json with every value changed by a flag. --steps rescales
the warmup and decays proportionally unless --warmup/--decays are given.
Recipe flags follow one convention: 0 keeps the HyperRule's value, a
negative --warmup or --mixup-alpha switches warmup or MixUp off.

--train full   fine-tunes every weight with the native engine.
--train head   freezes the trunk and trains the pre-head GroupNorm affine and
               the linear head. The trunk's output (the tensor entering the
               pre-head GroupNorm) is computed once by ONNX Runtime (native
               engine when ONNX Runtime is unavailable, logged) for --views
               augmented views of every training image (HyperRule random crop
               + flip, a different draw per view) and cached; training then
               samples cached views. The augmentation is thus limited to V
               draws per image. MixUp (when the rule asks for it) is applied to
               the cached activations, i.e. feature-level MixUp at the input of
               the pre-head GroupNorm: because GroupNorm and ReLU are
               non-linear this is NOT equivalent to pixel MixUp; it is the
               honest cheap analogue, recorded as mixup_on in hyperrule.json.
               Use --mixup-alpha -1 to switch it off.

--examples-per-class K trains on K seeded examples of each class (few-shot);
when the batch exceeds the selected examples they are sampled with
replacement, as the BiT reference does. The rule is computed on the K-shot
set.

--adapt-resolution R (or auto: the dataset's native image side) adds the
train-to-test resolution adaptation step (FixRes): after training, freeze the
trunk and fine-tune the pre-head GroupNorm affine and the head on training
images preprocessed the test way (square resize to R; at most adapt-steps x
batch of them, a seeded subset), without augmentation or MixUp, for
--adapt-steps steps (default: a fifth of the schedule, the
HyperRule's shape scaled). Test top-1 at R is reported before and after, and
the exported model's resolution is R.

The run folder gets hyperrule.json, metrics.jsonl, curve.png, checkpoints,
weights.npz, model.onnx (labels and preprocessing metadata, resolution = the
test resolution; ready for eval and serve), confusion.png and summary.json.
Ctrl-C saves a checkpoint; --resume continues to the same result.

"bitrun finetune table RUNDIR..." prints a results table of finished runs.`,
		Example: `  bitrun finetune --data /usr/share/datasets/fashion-mnist --weights /work/runs/mnist-small/weights.npz \
      --train head --out runs/fmnist-head
  bitrun finetune --data ./flowers --model BiT-M-R50x1 --train full --batch 64 --batch-split 4 --out runs/flowers
  bitrun finetune table runs/fmnist-head runs/flowers`,
		Args: cobra.NoArgs,
		RunE: runE(bound(c, finetuneFlags), runFinetune),
	}
	f := cmd.Flags()
	addWeightsFlags(cmd, &c.weights)
	addORTFlags(cmd)
	// The settings with a configuration key (finetune.NAME), read by
	// finetuneFlags.
	f.String("data", "", `dataset folder (IDX files or one sub-folder per class), or "mnist" (GoMNIST module data)`)
	f.String("train", finetune.ModeFull, "what to train: full (every weight) or head (pre-head GroupNorm + head on cached trunk activations)")
	f.Int("batch", 512, "logical batch size (lr scales with batch/512)")
	f.Int("batch-split", 1, "micro-batches per step for --train full (gradient accumulation; must divide --batch)")
	f.Int("views", finetune.DefaultViews, "--train head: augmented views cached per training image")
	f.Uint64("seed", 0, "seed of the few-shot selection, data order, augmentation and MixUp")
	f.Int("checkpoint-every", 0, "save a checkpoint every N steps (0: only on Ctrl-C and at the end)")
	f.String("engine", finetune.EngineAuto, "trunk activations for --train head and adaptation: auto, ort or native")
	f.String("gemm", "", "GEMM backend: auto, go, openblas, gonum (default $BITRUN_GEMM or auto)")
	for _, name := range []string{"data", "train", "batch", "batch-split", "seed", "checkpoint-every", "engine", "gemm", "views"} {
		bindKey(cmd, "finetune."+strings.ReplaceAll(name, "-", "_"), name)
	}
	// The recipe: decays, momentum and weight decay count only when given
	// (finetuneFlags); the others are bound to their options.
	f.IntVar(&r.steps, "steps", 0, "schedule length (0: the HyperRule's); rescales warmup and decays")
	f.IntVar(&r.warmup, "warmup", 0, "linear warmup steps (0: the HyperRule's, rescaled with --steps; negative: none; formerly 0 meant none and -1 the HyperRule's)")
	f.String("decays", "", "lr x0.1 steps, comma-separated (default: the HyperRule's, rescaled with --steps)")
	f.Float64Var(&r.lr, "lr", 0, "base learning rate at batch 512 (0: the HyperRule's 0.003)")
	f.IntVar(&r.resolution, "resolution", 0, "train crop = test resolution (0: the HyperRule's)")
	f.IntVar(&r.resize, "resize", 0, "resize before the random crop (0: the HyperRule's, or 5/4 of --resolution when that is given)")
	f.Float64Var(&r.mixupAlpha, "mixup-alpha", 0, "MixUp alpha (0: the HyperRule's; negative: no MixUp; formerly 0 meant none and -1 the HyperRule's)")
	f.Float64("momentum", 0.9, "SGD momentum")
	f.Float64("weight-decay", 0, "weight decay (the HyperRule has none)")
	// The rest of the run.
	f.StringVar(&o.OutDir, "out", "", "run folder (created)")
	f.StringVar(&c.ruleName, "resolution-rule", string(finetune.RulePaper), "large-image tier: paper (448 -> 384) or code (512 -> 480)")
	f.BoolVar(&c.flip, "flip", true, "random horizontal flip (use --flip=false for digits or text)")
	f.IntVar(&o.ExamplesPerClass, "examples-per-class", 0, "few-shot: train on K seeded examples per class (0: all)")
	f.StringVar(&c.adaptRes, "adapt-resolution", "", `train-to-test resolution adaptation at R pixels, or "auto" (the dataset's image side); off when empty`)
	f.IntVar(&o.AdaptSteps, "adapt-steps", 0, "adaptation schedule length (0: a fifth of the schedule, at least 10)")
	f.BoolVar(&o.Resume, "resume", false, "continue the run in --out from its checkpoint")
	f.IntVar(&o.EvalBatch, "eval-batch", 128, "batch size of the test evaluations")
	f.IntVar(&c.cacheMB, "max-cache-mb", int(finetune.DefaultMaxCacheBytes>>20), "limit of the cached trunk activations (MiB)")
	f.StringVar(&c.note, "note", "", "why the recipe was changed, recorded in hyperrule.json")
	f.BoolVar(&c.asJSON, "json", false, "print the summary as JSON")
	f.BoolVar(&c.dryRun, "dry-run", false, "print the recipe and the estimated wall time (a short timed probe) and stop")
	cmd.AddCommand(newFinetuneTableCmd())
	return cmd
}

func newFinetuneTableCmd() *cobra.Command {
	var o finetuneTableOptions
	return &cobra.Command{
		Use:   "table RUNDIR...",
		Short: "Print a results table of finished fine-tuning runs",
		Long: `Print one row per run folder from its summary.json: mode, source, shots,
steps, batch, train resolution, test top-1 there, the adaptation's
resolution with top-1 before and after, the final top-1 of the exported
weights (native engine), the exported model's top-1 under ONNX Runtime when
the folder holds eval-onnx.json (bitrun eval --onnx RUNDIR/model.onnx --json),
and the training time.`,
		Args: cobra.MinimumNArgs(1),
		RunE: runE(boundArgs(&o, &o.dirs), runFinetuneTable),
	}
}

// finetuneTableOptions are the run folders finetune table reads.
type finetuneTableOptions struct{ dirs []string }

func (finetuneTableOptions) validate() error { return nil }

// runFinetuneTable prints the table of the run folders on stdout.
func runFinetuneTable(_ context.Context, o finetuneTableOptions, stdout, _ io.Writer) error {
	rows := make([]finetune.Row, 0, len(o.dirs))
	for _, dir := range o.dirs {
		r, err := finetune.LoadRow(dir)
		if err != nil {
			return err
		}
		rows = append(rows, r)
	}
	return finetune.WriteTable(stdout, rows)
}

// finetuneOptions is what the finetune command runs: the library options
// and the command's own settings, bound to its flags, completed from the
// configuration by finetuneFlags, checked by validate and completed by
// prepare.
type finetuneOptions struct {
	o              finetune.Options
	dataPath       string
	weights        weightsRef // the source model
	gemm           string     // "": $BITRUN_GEMM or auto
	ruleName       string     // --resolution-rule
	recipe         recipeFlags
	note           string // why the recipe was changed
	adaptRes       string // --adapt-resolution: pixels, "auto" or "" (off)
	cacheMB        int
	flip           bool // --flip; o.NoFlip is its negation
	asJSON, dryRun bool
	notices        []string // printed on stderr before the run

	// set by prepare
	trainSet, testSet   data.Dataset
	selected, imageSide int // training examples used; native image side
	source              string
}

// recipeFlags are the flags that change the computed HyperRule. Each
// follows the settings convention: 0 keeps the rule's value, and a
// negative warmup or MixUp alpha switches it off.
type recipeFlags struct {
	steps       int      // schedule length, rescaling warmup and decays; 0: the rule's
	warmup      int      // warmup steps; 0: the rule's (rescaled with steps); negative: none
	decays      *string  // lr x0.1 steps, comma-separated; nil: the rule's (rescaled); "": none
	lr          float64  // base lr at the rule's batch; 0: the rule's
	resolution  int      // train crop = test resolution; 0: the rule's
	resize      int      // resize before the crop; 0: the rule's, or 5/4 of resolution when that is given
	mixupAlpha  float64  // 0: the rule's; negative: no MixUp
	momentum    *float64 // nil: the rule's
	weightDecay *float64 // nil: the rule's
}

// finetuneFlags completes the options with the configuration keys, the
// recipe flags that count only when given, the source model and the ONNX
// Runtime settings; nothing is read from disk or the network yet.
func finetuneFlags(cmd *cobra.Command, _ []string, c *finetuneOptions) error {
	f := cmd.Flags()
	o, r := &c.o, &c.recipe
	c.dataPath = cfg.GetString("finetune.data")
	var err error
	if o.Mode, err = configEnum(cmd, "finetune.train", finetune.ModeFull, finetune.ModeHead); err != nil {
		return err
	}
	if err := configInts(cmd, intKey{"finetune.batch", 1, math.MaxInt, &o.Batch}, intKey{"finetune.batch_split", 1, math.MaxInt, &o.BatchSplit}); err != nil {
		return err
	}
	if o.Seed, err = configUint64(cmd, "finetune.seed"); err != nil {
		return err
	}
	if o.CheckpointEvery, err = configInt(cmd, "finetune.checkpoint_every", 0, math.MaxInt); err != nil {
		return err
	}
	if o.Engine, err = configEnum(cmd, "finetune.engine", finetune.EngineAuto, finetune.EngineORT, finetune.EngineNative); err != nil {
		return err
	}
	if o.Views, err = configInt(cmd, "finetune.views", 1, 1024); err != nil {
		return err
	}
	if c.gemm, err = configEnum(cmd, "finetune.gemm", gemmNames...); err != nil {
		return err
	}
	o.NoFlip = !c.flip
	o.MaxCacheBytes = int64(c.cacheMB) << 20
	if f.Changed("decays") {
		d, _ := f.GetString("decays")
		r.decays = &d
	}
	if f.Changed("momentum") {
		m, _ := f.GetFloat64("momentum")
		r.momentum = &m
	}
	if f.Changed("weight-decay") {
		wd, _ := f.GetFloat64("weight-decay")
		r.weightDecay = &wd
	}
	// 0 meant "none" for these two flags before the settings convention.
	for _, name := range []string{"warmup", "mixup-alpha"} {
		if v := f.Lookup(name); v.Changed && v.Value.String() == "0" {
			c.notices = append(c.notices, fmt.Sprintf("bitrun: note: --%s 0 keeps the HyperRule's value; give a negative value to switch it off", name))
		}
	}
	if err := c.weights.complete(cmd); err != nil {
		return err
	}
	ro, err := ortOptions(cmd)
	if err != nil {
		return err
	}
	ro.Logger = nil // the trunk session's load details are noise here
	o.Runtime = ro
	o.Logger = cliLogger(cmd)
	return nil
}

// validate checks the options against each other and selects the GEMM
// backend (usage errors).
func (c *finetuneOptions) validate() error {
	o := &c.o
	if err := checkRunFlags(c.dataPath, o.OutDir, o.Batch, o.BatchSplit); err != nil {
		return err
	}
	switch {
	case o.ExamplesPerClass < 0:
		return usagef("--examples-per-class %d: must be >= 0", o.ExamplesPerClass)
	case c.cacheMB <= 0:
		return usagef("--max-cache-mb %d: must be positive", c.cacheMB)
	}
	if err := selectGEMM(c.gemm); err != nil {
		return err
	}
	return c.weights.checkOne("", "", "give the source model: --model NAME (zoo) or --weights FILE")
}

// selectGEMM selects the GEMM backend train and finetune --gemm name
// ("": $BITRUN_GEMM or auto, which must have loaded).
func selectGEMM(name string) error {
	if name == "" {
		return nn.BackendError()
	}
	if _, err := nn.SelectBackend(name); err != nil {
		return usageError{err}
	}
	return nil
}

// runFinetune: data and recipe (prepare) -> estimate -> finetune.Run ->
// summary on stdout; the recipe, estimate and progress on stderr.
func runFinetune(ctx context.Context, c finetuneOptions, stdout, stderr io.Writer) error {
	for _, n := range c.notices {
		fmt.Fprintln(stderr, n)
	}
	if err := c.prepare(ctx, stderr); err != nil {
		return err
	}
	o := &c.o
	if !o.Resume || c.dryRun {
		est, err := finetune.EstimateRun(ctx, *o, c.trainSet, c.testSet)
		if err != nil {
			return err
		}
		printFinetuneEstimate(stderr, *o, est, c.imageSide)
		if c.dryRun {
			return nil
		}
	}
	o.Progress = finetuneProgress(stderr)
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	o.Logger.Info("fine-tuning", "mode", o.Mode, "source", c.source, "data", c.dataPath, "train", c.selected, "test", c.testSet.Len(),
		"classes", len(c.trainSet.Classes()), "gemm", nn.Backend().Name(), "out", o.OutDir)
	sum, err := finetune.Run(ctx, *o, c.trainSet, c.testSet)
	if err != nil {
		// An existing run folder or a resume with other options is a state
		// error (the error alone); only invalid options are usage errors.
		if errors.Is(err, finetune.ErrOptions) {
			return usageError{err}
		}
		return err
	}
	if c.asJSON {
		return writeJSON(stdout, sum)
	}
	return printFinetuneSummary(stdout, sum)
}

// prepare resolves the source weights (pulling a --model), opens the data,
// computes the HyperRule with the recipe flags applied, loads the source
// and prints the recipe on stderr.
func (c *finetuneOptions) prepare(ctx context.Context, stderr io.Writer) error {
	o := &c.o
	weights, err := c.weights.resolve(ctx)
	if err != nil {
		return err
	}
	if err := checkModelFile(weights, "--weights", kindNPZ); err != nil {
		return err
	}
	c.source = weights
	if c.trainSet, err = openDataset(c.dataPath, "train"); err != nil {
		return err
	}
	if c.testSet, err = openDataset(c.dataPath, "test"); err != nil {
		return err
	}
	sel := finetune.Select(c.trainSet, o.ExamplesPerClass, o.Seed)
	area, bounds, err := finetune.ImageArea(sel)
	if err != nil {
		return err
	}
	c.selected, c.imageSide = sel.Len(), max(bounds.Dx(), bounds.Dy())
	rule, err := finetune.HyperRuleFor(sel.Len(), area, finetune.ResolutionRule(c.ruleName))
	if err != nil {
		return usageError{err}
	}
	rule, o.Changes, err = c.recipe.apply(rule)
	if err != nil {
		return err
	}
	if o.Batch != rule.BatchSize {
		o.Changes = append(o.Changes, fmt.Sprintf("batch: %d -> %d (lr %.4g x %d/%d = %.4g)", rule.BatchSize, o.Batch,
			rule.BaseLR, o.Batch, rule.BatchSize, rule.BaseLR*float64(o.Batch)/float64(rule.BatchSize)))
	}
	if c.note != "" {
		o.Changes = append(o.Changes, "why: "+c.note)
	}
	if s := c.adaptRes; s != "" {
		if strings.EqualFold(s, "auto") {
			o.AdaptResolution = c.imageSide
		} else if o.AdaptResolution, err = strconv.Atoi(s); err != nil || checkResolution("--adapt-resolution", o.AdaptResolution, false) != nil {
			return usagef("--adapt-resolution %q: want %d..%d pixels, or auto", s, minResolution, maxResolution)
		}
	}
	if _, err := os.Stat(filepath.Join(o.OutDir, finetune.RuleFile)); o.Resume && err != nil && !train.HasCheckpoint(o.OutDir) {
		return usagef("--resume: %s holds no fine-tuning run", o.OutDir)
	}
	src, err := model.LoadNPZ(weights)
	if err != nil {
		return err
	}
	o.Source, o.SourcePath = src, weights
	if o.SourceSHA, err = fileSHA256(ctx, weights); err != nil {
		return err
	}
	o.Version, _ = buildVersion()
	printRule(stderr, *o, rule, sel.Len(), bounds.Dx(), bounds.Dy())
	o.Rule = rule
	return nil
}

// apply applies the recipe flags to the computed rule and lists what
// changed.
func (r recipeFlags) apply(h finetune.HyperRule) (finetune.HyperRule, []string, error) {
	orig := h
	var changes []string
	note := func(format string, args ...any) { changes = append(changes, fmt.Sprintf(format, args...)) }
	if r.steps < 0 {
		return h, nil, usagef("--steps %d: must be positive (0: the HyperRule's)", r.steps)
	}
	if r.steps > 0 {
		h = h.Scale(r.steps)
		note("steps: %d -> %d (warmup and decays rescaled: %d, %v)", orig.Steps, h.Steps, h.Warmup, h.Decays)
	}
	if w := max(r.warmup, 0); r.warmup != 0 && w != h.Warmup {
		if w >= h.Steps {
			return h, nil, usagef("--warmup %d: want 1..%d, 0 for the HyperRule's or negative for none", r.warmup, h.Steps-1)
		}
		note("warmup: %d -> %d", h.Warmup, w)
		h.Warmup = w
	}
	if r.decays != nil {
		s := *r.decays
		d := []int{}
		for _, p := range strings.Split(s, ",") {
			if p = strings.TrimSpace(p); p == "" {
				continue
			}
			v, err := strconv.Atoi(p)
			if err != nil || v <= 0 || v > h.Steps || (len(d) > 0 && v < d[len(d)-1]) {
				return h, nil, usagef("--decays %q: want increasing steps within 1..%d", s, h.Steps)
			}
			d = append(d, v)
		}
		note("decays: %v -> %v", h.Decays, d)
		h.Decays = d
	}
	if r.lr < 0 {
		return h, nil, usagef("--lr %g: must be positive (0: the HyperRule's)", r.lr)
	}
	if r.lr > 0 {
		note("base lr at batch %d: %g -> %g", h.BatchSize, h.BaseLR, r.lr)
		h.BaseLR = r.lr
	}
	if res, resize := r.resolution, r.resize; res != 0 || resize != 0 {
		if res == 0 {
			res = h.Crop
		}
		if resize == 0 {
			resize = h.Resize
			if r.resolution != 0 {
				resize = data.TrainPreSize(res)
			}
		}
		if err := checkResolution("--resolution", res, false); err != nil {
			return h, nil, err
		}
		if resize < res || resize > maxResolution {
			return h, nil, usagef("--resolution %d / --resize %d: want resize >= crop and at most %d", res, resize, maxResolution)
		}
		note("resolution: resize %d, crop %d -> resize %d, crop %d", h.Resize, h.Crop, resize, res)
		h.Resize, h.Crop = resize, res
	}
	if a := max(r.mixupAlpha, 0); r.mixupAlpha != 0 && a != h.MixupAlpha {
		note("mixup alpha: %g -> %g", h.MixupAlpha, a)
		h.MixupAlpha = a
	}
	if r.momentum != nil {
		note("momentum: %g -> %g", h.Momentum, *r.momentum)
		h.Momentum = *r.momentum
	}
	if r.weightDecay != nil {
		note("weight decay: %g -> %g", h.WeightDecay, *r.weightDecay)
		h.WeightDecay = *r.weightDecay
	}
	return h, changes, nil
}

// printRule shows the recipe on stderr before training.
func printRule(w io.Writer, o finetune.Options, h finetune.HyperRule, n, iw, ih int) {
	fmt.Fprintf(w, "BiT-HyperRule for %d training examples of %dx%d pixels", n, iw, ih)
	if o.ExamplesPerClass > 0 {
		fmt.Fprintf(w, " (%d per class)", o.ExamplesPerClass)
	}
	fmt.Fprintln(w, ":")
	crop := fmt.Sprintf("random crop %d", h.Crop)
	if h.Resize == h.Crop {
		crop = "no crop"
	}
	fmt.Fprintf(w, "  resolution   resize %d, %s%s; test at %d\n", h.Resize, crop, map[bool]string{true: " + flip", false: ""}[!o.NoFlip], h.Crop)
	fmt.Fprintf(w, "  schedule     %d steps, warmup %d, lr x0.1 at %v\n", h.Steps, h.Warmup, h.Decays)
	fmt.Fprintf(w, "  optimiser    SGD momentum %g, weight decay %g, lr %g at batch %d", h.Momentum, h.WeightDecay, h.BaseLR, h.BatchSize)
	if o.Batch != h.BatchSize {
		fmt.Fprintf(w, " -> %.4g at batch %d", h.BaseLR*float64(o.Batch)/float64(h.BatchSize), o.Batch)
	}
	fmt.Fprintln(w)
	mix := "none"
	if h.MixupAlpha > 0 {
		mix = fmt.Sprintf("alpha %g", h.MixupAlpha)
		if o.Mode == finetune.ModeHead {
			mix += " (on cached trunk activations, not pixels)"
		}
	}
	fmt.Fprintf(w, "  mixup        %s\n", mix)
	fmt.Fprintf(w, "  head         zero-initialised; training: %s", o.Mode)
	if o.Mode == finetune.ModeHead {
		fmt.Fprintf(w, " (%d cached augmented views per image)", o.Views)
	}
	fmt.Fprintln(w)
	if n < o.Batch {
		fmt.Fprintf(w, "  sampling     with replacement (batch %d > %d examples)\n", o.Batch, n)
	}
	if o.AdaptResolution > 0 {
		fmt.Fprintf(w, "  adaptation   head + pre-head GN at %d (test preprocessing)\n", o.AdaptResolution)
	}
	if len(o.Changes) == 0 {
		fmt.Fprintln(w, "  changes      none (the rule as computed)")
	}
	for i, c := range o.Changes {
		label := ""
		if i == 0 {
			label = "changes"
		}
		fmt.Fprintf(w, "  %-12s %s\n", label, c)
	}
}

func printFinetuneSummary(w io.Writer, s *finetune.Summary) error {
	r := s.Run
	fmt.Fprintf(w, "mode           %s (%s, %d params, %d trainable, %d classes)\n", r.Mode, r.Arch, s.Params, s.Trainable, r.Classes)
	if s.Engine != "" {
		fmt.Fprintf(w, "trunk engine   %s", s.Engine)
		if s.CacheSeconds > 0 {
			fmt.Fprintf(w, " (cache %s)", time.Duration(s.CacheSeconds*float64(time.Second)).Round(time.Second))
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "steps          %d of batch %d on %d examples (resumed at %d)\n", s.Steps, r.Batch, r.TrainExamples, s.ResumedAt)
	fmt.Fprintf(w, "final loss     %.4f\n", s.FinalLoss)
	fmt.Fprintf(w, "train time     %s (%.1f examples/s, %s)\n", time.Duration(s.TrainSeconds*float64(time.Second)).Round(time.Second), s.ImagesPerSec, s.GEMM)
	fmt.Fprintf(w, "test top-1     %.2f%% of %d at %d px\n", 100*s.Top1, s.TestExamples, s.TrainRes)
	if a := s.Adapt; a != nil {
		fmt.Fprintf(w, "adaptation     at %d px: %.2f%% -> %.2f%% (%d steps, %s)\n", a.Resolution, 100*a.Top1Before, 100*a.Top1After,
			a.Steps, time.Duration(a.Seconds*float64(time.Second)).Round(time.Second))
	}
	fmt.Fprintf(w, "final top-1    %.2f%% (top-5 %.2f%%) at %d px\n", 100*s.FinalTop1, 100*s.FinalTop5, s.TestRes)
	fmt.Fprintf(w, "wall time      %s\n", time.Duration(s.WallSeconds*float64(time.Second)).Round(time.Second))
	fmt.Fprintf(w, "weights        %s\n", s.Weights)
	fmt.Fprintf(w, "onnx           %s\n", s.ONNX)
	return nil
}

// finetuneProgress prints finetune's progress on w, the first line of each
// phase included (see stepProgress).
func finetuneProgress(w io.Writer) func(train.Progress) {
	return stepProgress(w, true, func(p train.Progress) string {
		if p.Phase == "train" || p.Phase == "adapt" {
			return fmt.Sprintf("%s step %d/%d  loss %.4f  acc %.3f  lr %.4g  %.1f ex/s  ETA %s", p.Phase,
				p.Step, p.Steps, p.Loss, p.BatchAcc, p.LR, p.ImagesPerSec, p.ETA.Round(time.Second))
		}
		return fmt.Sprintf("%s %d/%d  %.0f img/s  ETA %s", p.Phase, p.Step, p.Steps, p.ImagesPerSec, p.ETA.Round(time.Second))
	})
}
