package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/bitrun/bitrun/eval"
	"github.com/bitrun/bitrun/internal/atomicfile"
	"github.com/bitrun/bitrun/model"
)

// preprocessFlags are the preprocessing overrides of predict, eval and
// extract as given (addPreprocessFlags); overrides checks them.
type preprocessFlags struct {
	resolution, channels int    // 0: the model's
	mean, std            string // "": the model's
}

// addPreprocessFlags adds the preprocessing overrides shared by predict,
// eval and extract, bound to p.
func addPreprocessFlags(cmd *cobra.Command, p *preprocessFlags) {
	cmd.Flags().IntVar(&p.resolution, "resolution", 0, "input side in pixels (default: the model's fixed input size or its bitrun.resolution metadata; required for --weights)")
	cmd.Flags().IntVar(&p.channels, "channels", 0, "input channels, 1 or 3 (default: the model's input shape)")
	cmd.Flags().StringVar(&p.mean, "mean", "", "per-channel mean on [0,1] pixels, \"r,g,b\" or one value (default: the model's bitrun.mean metadata; BiT: 0.5)")
	cmd.Flags().StringVar(&p.std, "std", "", "per-channel std on [0,1] pixels, \"r,g,b\" or one value (default: the model's bitrun.std metadata; BiT: 0.5)")
}

// overrides checks the preprocessing flags (usage errors for bad values)
// and returns them as the classifier takes them.
func (p preprocessFlags) overrides() (eval.Overrides, error) {
	o := eval.Overrides{Size: p.resolution, Channels: p.channels}
	if err := checkResolution("--resolution", o.Size, true); err != nil {
		return o, err
	}
	if o.Channels != 0 && o.Channels != 1 && o.Channels != 3 {
		return o, usagef("--channels %d: want 1 or 3", o.Channels)
	}
	for _, f := range []struct {
		name, value string
		dst         *[]float32
	}{{"mean", p.mean, &o.Mean}, {"std", p.std, &o.Std}} {
		if f.value == "" {
			continue
		}
		v, err := eval.ParseFloats(f.value)
		if err != nil || (len(v) != 1 && len(v) != 3) {
			return o, usagef("--%s %q: want one or three comma-separated numbers", f.name, f.value)
		}
		*f.dst = v
	}
	return o, nil
}

// classifierOptions is the model of predict and eval: --onnx or
// --weights/--model with the ONNX Runtime flags, and the preprocessing
// overrides, completed by complete.
type classifierOptions struct {
	model    modelRef
	preFlags preprocessFlags // as given; checked into pre by complete
	pre      eval.Overrides
}

// complete completes the model (bound to the flags by addModelFlags) and
// reads the preprocessing flags.
func (c *classifierOptions) complete(cmd *cobra.Command) error {
	if err := c.model.complete(cmd); err != nil {
		return err
	}
	var err error
	c.pre, err = c.preFlags.overrides()
	return err
}

// open opens the classifier (pulling a --model first) and returns it with
// its file; the close function releases it. command names the caller in
// errors that a flag fixes.
func (c classifierOptions) open(ctx context.Context, command string, labels []string) (eval.Classifier, string, func() error, error) {
	onnxPath, weights, err := c.model.resolve(ctx)
	if err != nil {
		return nil, "", nil, err
	}
	if weights != "" {
		if err := checkModelFile(weights, "--weights", kindNPZ); err != nil {
			return nil, "", nil, err
		}
		m, err := model.Load(weights)
		if err != nil {
			return nil, "", nil, err
		}
		clf, err := eval.NewNative(m, c.pre, labels)
		if err != nil {
			return nil, "", nil, preprocessUsage(command, err)
		}
		return clf, weights, func() error { return nil }, nil
	}
	if err := checkModelFile(onnxPath, "--onnx", kindONNX); err != nil {
		return nil, "", nil, err
	}
	clf, err := eval.OpenONNX(onnxPath, c.model.runtime, c.pre)
	if err != nil {
		return nil, "", nil, preprocessUsage(command, err)
	}
	return clf, onnxPath, clf.Close, nil
}

// preprocessUsage turns "preprocessing unknown" into a usage error: the fix
// is a flag.
func preprocessUsage(command string, err error) error {
	if errors.Is(err, eval.ErrPreprocess) {
		return usageError{commandPrefixed{command, err}}
	}
	return err
}

// commandPrefixed shows an eval package error under the command that
// met it ("predict: ..." rather than "eval: ..."), still wrapping it.
type commandPrefixed struct {
	name string
	err  error
}

func (e commandPrefixed) Error() string {
	return e.name + ": " + strings.TrimPrefix(e.err.Error(), "eval: ")
}
func (e commandPrefixed) Unwrap() error { return e.err }

// progressPrinter reports progress on stderr: one updating line on a
// terminal, a line per 10% otherwise.
func progressPrinter(w io.Writer, what string) func(done, total int) {
	show := progressLines(w)
	return func(done, total int) {
		pct := 100 * done / total
		show(fmt.Sprintf("%s %d/%d (%d%%)", what, done, total, pct), int64(pct), done == total)
	}
}

// progressLines prints progress lines on w: on a terminal one line redrawn in
// place (ended by the final one), otherwise a line each time the percentage
// reaches a new tenth, and the final one.
func progressLines(w io.Writer) func(line string, pct int64, final bool) {
	tty := isTerminal(w)
	last := int64(-1)
	return func(line string, pct int64, final bool) {
		if tty {
			fmt.Fprintf(w, "\r%s\x1b[K", line)
			if final {
				fmt.Fprintln(w)
			}
			return
		}
		if pct/10 != last/10 || final {
			last = pct
			fmt.Fprintln(w, line)
		}
	}
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func newEvalCmd() *cobra.Command {
	var o evalOptions
	cmd := &cobra.Command{
		Use:   "eval (--onnx FILE | --weights FILE | --model NAME) --data PATH",
		Short: "Measure a classifier on a labelled dataset: top-1/top-5, per-class accuracy, confusion matrix, images/s",
		Long: `Evaluate an image classifier on a labelled dataset (IDX files such as
Fashion-MNIST, or a folder with one sub-folder per class).

--onnx runs any ONNX classifier with one float32 NCHW input through ONNX
Runtime (needs a cgo build and the library: make setup). Preprocessing comes
from the model's fixed input shape and its bitrun.* metadata; --resolution,
--channels, --mean and --std override or complete it. --weights/--model run
bitrun's native engine on a .npz checkpoint (give --resolution).

The report goes to stdout as a table, or JSON with --json; --report FILE
also writes it as JSON to FILE (atomically); --plot writes the confusion
matrix as a PNG heat map. Progress goes to stderr.

--shard I/N evaluates a deterministic 1/N of the dataset (the examples whose
index modulo N is I; --shard N takes I from $JOB_COMPLETION_INDEX, as a
Kubernetes Indexed Job sets it), and "{shard}" in --report is replaced by I.
"bitrun eval merge" combines the N shard reports into exactly the report of
the unsharded run.`,
		Args: cobra.NoArgs,
		RunE: runE(bound(&o, evalFlags), runEval),
	}
	addModelFlags(cmd, &o.classifier.model)
	f := cmd.Flags()
	f.StringVar(&o.data, "data", "", `dataset: IDX folder, image folder, or "mnist" (GoMNIST module data) (required)`)
	f.StringVar(&o.split, "split", "test", "dataset split: train, test, or all (an image folder without train/ and test/ sub-folders is split 80/20 by a hash of each file's name; all takes every image)")
	f.Int("batch", eval.DefaultBatch, "images per batch") // eval.batch, read by evalFlags
	f.IntVar(&o.limit, "limit", 0, "evaluate only the first N images (0 = all)")
	f.Int("top-k", 5, "k of the top-k accuracy") // eval.top_k, read by evalFlags
	f.BoolVar(&o.json, "json", false, "print the report as JSON")
	f.StringVar(&o.plot, "plot", "", "write the confusion matrix as a PNG to this file")
	f.StringVar(&o.shardArg, "shard", "", shardHelp)
	f.StringVar(&o.report, "report", "", `also write the JSON report to this file ("{shard}" is replaced by the shard index)`)
	addPreprocessFlags(cmd, &o.classifier.preFlags)
	bindKey(cmd, "eval.batch", "batch")
	bindKey(cmd, "eval.top_k", "top-k")
	cmd.AddCommand(newEvalMergeCmd())
	return cmd
}

// evalOptions is what eval measures: bound to eval's flags, completed by
// evalFlags and checked by validate.
type evalOptions struct {
	classifier classifierOptions
	data       string
	split      string
	batch      int
	limit      int // 0: every image
	topK       int
	shardArg   string // --shard as given, parsed into shard
	shard      eval.Shard
	report     string // also write the JSON report here ("{shard}" replaced)
	plot       string // write the confusion matrix PNG here
	json       bool
}

// evalFlags completes eval's options with its configuration keys, the
// shard and the model flags; nothing is opened.
func evalFlags(cmd *cobra.Command, _ []string, o *evalOptions) error {
	err := configInts(cmd, intKey{"eval.batch", 1, 4096, &o.batch}, intKey{"eval.top_k", 1, math.MaxInt, &o.topK})
	if err != nil {
		return err
	}
	if o.shard, err = parseShard(o.shardArg, os.Getenv); err != nil {
		return err
	}
	if o.report != "" {
		o.report = shardPath(o.report, o.shard)
	}
	return o.classifier.complete(cmd)
}

// validate checks the options and, before the dataset is read, the output
// paths and the model files.
func (o evalOptions) validate() error {
	switch {
	case o.data == "":
		return usagef("--data is required")
	case o.limit < 0:
		return usagef("--limit %d: must be >= 0", o.limit)
	}
	if err := checkOutputFlag("eval", "--report", o.report); err != nil {
		return err
	}
	if err := o.classifier.model.check(); err != nil {
		return err
	}
	if err := o.classifier.model.checkFiles(); err != nil {
		return err
	}
	return checkOutputFlag("eval", "--plot", o.plot)
}

// runEval evaluates the model on the dataset: the report to stdout (and
// o.report), progress and the plot's path to stderr.
func runEval(ctx context.Context, o evalOptions, stdout, stderr io.Writer) error {
	ds, err := openDataset(o.data, o.split)
	if err != nil {
		return err
	}
	clf, file, closeFn, err := o.classifier.open(ctx, "eval", ds.Classes())
	if err != nil {
		return err
	}
	defer closeFn()
	if n, err := classCount(ctx, clf); err != nil {
		return err
	} else if n != len(ds.Classes()) {
		fmt.Fprintf(stderr, "bitrun: warning: the model has %d classes, the dataset %d (%s): accuracy compares class indices\n",
			n, len(ds.Classes()), o.data)
	}
	total := ds.Len()
	if o.limit > 0 {
		total = min(total, o.limit)
	}
	if o.shard.Sharded() {
		fmt.Fprintf(stderr, "evaluating %s on %s (%s, shard %s of %d images)\n", clf.Name(), o.data, o.split, o.shard, total)
	} else {
		fmt.Fprintf(stderr, "evaluating %s on %s (%s, %d images)\n", clf.Name(), o.data, o.split, total)
	}
	rep, err := eval.Run(ctx, clf, ds, eval.Options{
		Batch: o.batch, Limit: o.limit, K: o.topK, Shard: o.shard,
		Progress: progressPrinter(stderr, "eval"),
	})
	if err != nil {
		return err
	}
	rep.Dataset = fmt.Sprintf("%s (%s)", o.data, o.split)
	// The SHA-256 of the model file: shards of different models never merge.
	if rep.ModelSHA256, err = fileSHA256(ctx, file); err != nil {
		return err
	}
	if o.report != "" {
		if err := atomicfile.WriteJSON(o.report, rep); err != nil {
			return fmt.Errorf("eval: --report: %w", err)
		}
	}
	return writeReport(stdout, stderr, rep, o.json, o.plot)
}

// writeReport prints an eval report to stdout, as JSON or a table, then
// writes its confusion matrix to plot when one is given (eval and eval
// merge).
func writeReport(stdout, stderr io.Writer, rep *eval.Report, asJSON bool, plot string) error {
	// The report first: a plot that cannot be written loses nothing.
	var err error
	if asJSON {
		err = eval.WriteJSON(stdout, rep)
	} else {
		err = eval.WriteText(stdout, rep)
	}
	if err != nil || plot == "" {
		return err
	}
	if err := eval.WriteConfusionPNG(plot, rep); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "confusion matrix written to %s\n", plot)
	return nil
}

// checkOutputFlag is checkOutputPath for the file given to flag (none when
// path is ""), its error under command ("eval: --plot: ...").
func checkOutputFlag(command, flag, path string) error {
	if path == "" {
		return nil
	}
	if err := checkOutputPath(path); err != nil {
		return fmt.Errorf("%s: %s: %w", command, flag, err)
	}
	return nil
}

// checkOutputPath fails early when path cannot be written: its folder is
// missing or not a folder, or path is a folder.
func checkOutputPath(path string) error {
	dir := filepath.Dir(path)
	st, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if !st.IsDir() {
		return fmt.Errorf("%s is not a folder", dir)
	}
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		return fmt.Errorf("%s is a folder", path)
	}
	f, err := os.CreateTemp(dir, ".bitrun-check-*")
	if err != nil {
		return err
	}
	name := f.Name()
	return errors.Join(f.Close(), os.Remove(name))
}

// classCount returns the number of classes clf scores: one forward pass of
// a blank image.
func classCount(ctx context.Context, clf eval.Classifier) (int, error) {
	pre := clf.Preprocess()
	_, n, err := clf.Logits(ctx, make([]float32, pre.Channels*pre.Size*pre.Size), 1)
	return n, err
}
