package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/bitrun/bitrun/data"
	"github.com/bitrun/bitrun/quantize"
	"github.com/bitrun/bitrun/runtime"
	"github.com/bitrun/bitrun/zoo"
	"github.com/spf13/cobra"
)

// quantizeOptions are the settings of bitrun quantize: bound to its flags,
// completed by quantizeFlags and checked by validate.
type quantizeOptions struct {
	in, out     string
	zooModel    string // --model: a zoo name, resolved to its cached export by runQuantize
	zoo         zoo.Options
	data        string
	calibSplit  string
	evalSplit   string
	images      int
	seed        uint64
	method      string
	head        string
	guard       string
	batch       int
	minChannels int
	limit       int
	maxDrop     float64
	force       bool
	perClass    bool
	runtime     runtime.Options
	parsedHead  quantize.Head
	parsedCalib quantize.Method
	parsedGuard quantize.Guard
}

func newQuantizeCmd() *cobra.Command {
	var o quantizeOptions
	cmd := &cobra.Command{
		Use:   "quantize (--onnx IN | --model NAME) --data DIR --out OUT",
		Short: "Quantize a BiT ONNX export to int8 (static, QDQ) with calibration and an accuracy guard",
		Long: `Static post-training quantization of a bitrun BiT export to an int8 QDQ
model that ONNX Runtime runs with integer kernels.

Convolution kernels become int8 with one symmetric scale per output channel;
the activations around every convolution become uint8, their ranges measured
on --calibration images of --data (--calibration-split, default train) with
the model's own preprocessing: --calibrate minmax; percentile:P to clip at
the P-th percentile of the absolute values; or entropy, the clip whose
quantized histogram is closest to the measured one (least KL divergence, as
TensorRT's and ONNX Runtime's entropy calibrators). GroupNorm, the residual
additions and the softmax stay float; --head int8 quantizes the classifier
too.

The accuracy guard then runs both models on --eval-split (default test;
--limit N for the first N images) and refuses to write OUT when the int8
model falls more than --max-drop points behind (negative: guard off) unless
--force. --force also overwrites an existing OUT. What it measures
(--guard):
  labels     top-1 of both models against the dataset's labels; the limit
             applies to the drop. The dataset must have the model's classes.
  agreement  how often the int8 model's top-1 is the fp32 model's (and the
             fp32 top-1 is among the int8 top 5); labels unused, the limit
             applies to the disagreement, 100 - agreement %. For models
             whose classes are not the dataset's, such as the zoo's
             1000-class (BiT-S) and 21843-class (BiT-M) checkpoints.
  auto       (default) labels when the dataset has the model's class count,
             else agreement.

--onnx takes the .onnx file or a run folder holding model.onnx. --model
takes a zoo name: its checkpoint is pulled into the cache (unless --offline)
and exported once to NAME.onnx beside it at the catalog's resolution, as
"bitrun zoo pull --onnx" does; that export is the fp32 model. For a
checkpoint file, run "bitrun export" first.

OUT keeps the export's metadata (predict, eval, bench and serve use it
unchanged) and records the quantization method, the calibration data, the
fp32 model's SHA-256 and the measured accuracy. It is written atomically,
and never when a step fails.`,
		Example: `  bitrun quantize --onnx r50x1.onnx --data /usr/share/datasets/fashion-mnist --out r50x1-int8.onnx
  bitrun quantize --onnx runs/fmnist --data /usr/share/datasets/fashion-mnist --out int8.onnx \
      --calibration 256 --calibrate percentile:99.99 --limit 2000
  bitrun quantize --model BiT-M-R50x1 --data /usr/share/datasets/fashion-mnist --out r50x1-int8.onnx \
      --calibrate entropy --limit 1000   # 21843 classes: the guard measures fp32/int8 agreement`,
		Args: cobra.NoArgs,
		RunE: runE(bound(&o, quantizeFlags), runQuantize),
	}
	f := cmd.Flags()
	f.StringVar(&o.in, "onnx", "", "fp32 BiT ONNX export (a file, or a run folder holding model.onnx)")
	f.StringVar(&o.zooModel, "model", "", "zoo model name (e.g. BiT-M-R50x1): its cached ONNX export, pulled and exported unless --offline")
	f.StringVar(&o.data, "data", "", "dataset: IDX folder or image folder (required)")
	f.StringVar(&o.out, "out", "", "output int8 ONNX file (required)")
	f.IntVar(&o.images, "calibration", quantize.DefaultImages, "calibration images")
	f.StringVar(&o.calibSplit, "calibration-split", "train", "split the calibration images come from: train or test")
	f.Uint64Var(&o.seed, "seed", 1, "seed of the calibration image draw")
	f.StringVar(&o.method, "calibrate", "minmax", "calibration method: minmax, entropy or percentile:P (e.g. percentile:99.99)")
	f.StringVar(&o.head, "head", "float", "classifier head: float or int8")
	f.StringVar(&o.guard, "guard", "auto", "what the accuracy guard measures: labels (top-1), agreement (fp32 vs int8 top-1), auto (labels when the classes match)")
	f.StringVar(&o.evalSplit, "eval-split", "test", "held-out split of the accuracy guard: train or test")
	f.IntVar(&o.limit, "limit", 0, "evaluate only the first N images of the eval split (0 = all)")
	f.Float64Var(&o.maxDrop, "max-drop", quantize.DefaultMaxDrop, "largest top-1 drop (or disagreement, --guard agreement) in points written without --force (negative: guard off)")
	f.IntVar(&o.minChannels, "min-channels", quantize.DefaultMinChannels, "keep convolutions with fewer input channels float (the 3-channel root conv is faster in float; negative: quantize all)")
	f.IntVar(&o.batch, "batch", quantize.DefaultBatch, "calibration batch (bounds memory: one batch of activations)")
	f.BoolVar(&o.perClass, "per-class", false, "print per-class accuracy of both models")
	f.BoolVar(&o.force, "force", false, "write OUT even when the drop exceeds --max-drop, and overwrite an existing OUT")
	addORTFlags(cmd)
	addZooFlagSet(cmd, false)
	return cmd
}

// quantizeFlags completes the options with the ONNX Runtime settings and,
// for a --model, the zoo's.
func quantizeFlags(cmd *cobra.Command, _ []string, o *quantizeOptions) error {
	var err error
	if o.runtime, err = ortOptions(cmd); err != nil {
		return err
	}
	if o.zooModel != "" {
		o.zoo, err = zooOptions(cmd)
	}
	return err
}

// validate checks the options and resolves a run folder to its model.
func (o *quantizeOptions) validate() error {
	switch {
	case o.in != "" && o.zooModel != "":
		return usagef("--onnx and --model are exclusive")
	case o.in == "" && o.zooModel == "":
		return usagef("give the fp32 model: --onnx FILE (or run folder) or --model NAME")
	case o.data == "":
		return usagef("--data is required")
	case o.out == "":
		return usagef("--out is required")
	case o.images <= 0:
		return usagef("--calibration %d: must be positive", o.images)
	case o.batch <= 0 || o.batch > 1024:
		return usagef("--batch %d: must be in [1, 1024]", o.batch)
	case o.limit < 0:
		return usagef("--limit %d: must be >= 0", o.limit)
	}
	var err error
	if o.parsedCalib, err = quantize.ParseMethod(o.method); err != nil {
		return usageError{err}
	}
	if o.parsedHead, err = quantize.ParseHead(o.head); err != nil {
		return usageError{err}
	}
	if o.parsedGuard, err = quantize.ParseGuard(o.guard); err != nil {
		return usageError{err}
	}
	if o.zooModel != "" {
		if _, err := zoo.ParseName(o.zooModel); err != nil {
			return usagef("--model: %v", err)
		}
		return checkOverwrite(o.out, o.force)
	}
	if st, err := os.Stat(o.in); err == nil && st.IsDir() {
		o.in = filepath.Join(o.in, "model.onnx")
	}
	if sameFile(o.in, o.out) {
		return usagef("--out %s is the input model", o.out)
	}
	return checkOverwrite(o.out, o.force)
}

// resolveZooModel sets o.in to the cached ONNX export of the --model zoo
// name: the checkpoint (and its label file) pulled unless offline, and
// exported once beside it.
func (o *quantizeOptions) resolveZooModel(ctx context.Context, stderr io.Writer) error {
	res, err := zoo.Pull(ctx, o.zooModel, o.zoo)
	if err != nil {
		return offlineHint(err, o.zooModel)
	}
	if o.in, err = exportPulled(ctx, res, o.zoo.Logger, stderr); err != nil {
		return err
	}
	if sameFile(o.in, o.out) {
		return usagef("--out %s is the input model", o.out)
	}
	return nil
}

// sameFile reports whether a and b name the same path.
func sameFile(a, b string) bool {
	aa, err1 := filepath.Abs(a)
	ba, err2 := filepath.Abs(b)
	return err1 == nil && err2 == nil && aa == ba
}

// runQuantize quantizes and prints the accuracy table on stdout.
func runQuantize(ctx context.Context, o quantizeOptions, stdout, stderr io.Writer) error {
	if o.zooModel != "" { // may download: after validate
		if err := o.resolveZooModel(ctx, stderr); err != nil {
			return err
		}
	}
	calib, err := data.Open(o.data, o.calibSplit)
	if err != nil {
		return err
	}
	var evalSet data.Dataset
	if o.maxDrop >= 0 || o.limit > 0 {
		if evalSet, err = data.Open(o.data, o.evalSplit); err != nil {
			return err
		}
	}
	maxDrop := o.maxDrop
	if maxDrop == 0 {
		maxDrop = 1e-9 // 0 means "no drop at all" on the command line, not the library default
	}
	fmt.Fprintf(stderr, "quantizing %s: %d calibration images of %s (%s), %s, head %s\n",
		o.in, o.images, o.data, o.calibSplit, o.parsedCalib, o.parsedHead)
	progress := map[string]func(int, int){}
	res, err := quantize.Quantize(ctx, o.in, o.out, quantize.Options{
		Calibration: calib, CalibrationName: fmt.Sprintf("%s (%s)", o.data, o.calibSplit),
		Images: o.images, Seed: o.seed, Method: o.parsedCalib, Head: o.parsedHead, Batch: o.batch,
		MinChannels: o.minChannels,
		Eval:        evalSet, EvalName: fmt.Sprintf("%s (%s)", o.data, o.evalSplit), Limit: o.limit, Guard: o.parsedGuard,
		MaxDrop: maxDrop, Force: o.force, Runtime: o.runtime, Logger: o.runtime.Logger,
		Progress: func(phase string, done, total int) {
			p := progress[phase]
			if p == nil {
				p = progressPrinter(stderr, phase)
				progress[phase] = p
			}
			p(done, total)
		},
	})
	if res != nil && res.Accuracy != nil {
		writeQuantizeReport(stdout, res, o.perClass)
	}
	switch {
	case errors.Is(err, quantize.ErrAccuracy):
		return fmt.Errorf("%w (use --force to write it anyway, or raise --max-drop)", err)
	case errors.Is(err, quantize.ErrOptions):
		return usageError{err}
	case err != nil:
		return err
	}
	fmt.Fprintf(stderr, "wrote %s: %d convolutions int8 (%d float), %d activations uint8, %s (fp32 %s), %v\n",
		res.Path, res.Convs, res.FloatConvs, res.Activations, byteSize(res.Bytes), byteSize(res.SourceBytes), res.Duration.Round(1e6))
	return nil
}

// writeQuantizeReport prints what the guard measured: fp32 and int8 top-1
// and the drop, or the agreement and disagreement; the agreement either
// way, and optionally the per-class changes.
func writeQuantizeReport(w io.Writer, res *quantize.Result, perClass bool) {
	a := res.Accuracy
	fmt.Fprintf(w, "eval images      %d  (%s)\n", a.Images, a.Data)
	fmt.Fprintf(w, "guard            %s\n", a.Guard)
	if a.Guard == quantize.GuardLabels.String() {
		fmt.Fprintf(w, "fp32 top-1       %.2f%%\n", 100*a.FP32Top1)
		fmt.Fprintf(w, "int8 top-1       %.2f%%\n", 100*a.Int8Top1)
		fmt.Fprintf(w, "drop             %.2f points (limit %.2f)\n", a.Drop, a.MaxDrop)
	}
	fmt.Fprintf(w, "top-1 agreement  %.2f%% of images: int8 top-1 = fp32 top-1\n", 100*a.Agreement)
	fmt.Fprintf(w, "top-5 agreement  %.2f%% of images: fp32 top-1 in int8 top-5\n", 100*a.Top5Agreement)
	if a.Guard != quantize.GuardLabels.String() {
		fmt.Fprintf(w, "disagreement     %.2f points (limit %.2f)\n", a.Drop, a.MaxDrop)
	}
	if !perClass || res.FP32 == nil || res.Int8 == nil {
		return
	}
	fmt.Fprintf(w, "\n%-20s %8s %8s %8s\n", "class", "fp32", "int8", "change")
	for i, fc := range res.FP32.PerClass {
		if i >= len(res.Int8.PerClass) {
			break
		}
		ic := res.Int8.PerClass[i]
		label := fc.Label
		if label == "" {
			label = fmt.Sprint(fc.Index)
		}
		fmt.Fprintf(w, "%-20s %7.2f%% %7.2f%% %+8.2f\n", label, 100*float64(fc.Accuracy), 100*float64(ic.Accuracy),
			100*(float64(ic.Accuracy)-float64(fc.Accuracy)))
	}
}
