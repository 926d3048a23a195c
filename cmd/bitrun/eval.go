package main

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/bitrun/bitrun/eval"
	"github.com/bitrun/bitrun/internal/atomicfile"
	"github.com/bitrun/bitrun/model"
	"github.com/bitrun/bitrun/runtime"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// addPreprocessFlags adds the preprocessing overrides shared by predict and eval.
func addPreprocessFlags(cmd *cobra.Command) {
	cmd.Flags().Int("resolution", 0, "input side in pixels (default: the model's fixed input size or its bitrun.resolution metadata; required for --weights)")
	cmd.Flags().Int("channels", 0, "input channels, 1 or 3 (default: the model's input shape)")
	cmd.Flags().String("mean", "", "per-channel mean on [0,1] pixels, \"r,g,b\" or one value (default: the model's bitrun.mean metadata; BiT: 0.5)")
	cmd.Flags().String("std", "", "per-channel std on [0,1] pixels, \"r,g,b\" or one value (default: the model's bitrun.std metadata; BiT: 0.5)")
}

func preprocessOverrides(cmd *cobra.Command) (eval.Overrides, error) {
	var o eval.Overrides
	o.Size, _ = cmd.Flags().GetInt("resolution")
	o.Channels, _ = cmd.Flags().GetInt("channels")
	if err := checkResolution("--resolution", o.Size, true); err != nil {
		return o, err
	}
	if o.Channels != 0 && o.Channels != 1 && o.Channels != 3 {
		return o, usagef("--channels %d: want 1 or 3", o.Channels)
	}
	for _, name := range []string{"mean", "std"} {
		s, _ := cmd.Flags().GetString(name)
		if s == "" {
			continue
		}
		v, err := eval.ParseFloats(s)
		if err != nil || (len(v) != 1 && len(v) != 3) {
			return o, usagef("--%s %q: want one or three comma-separated numbers", name, s)
		}
		if name == "mean" {
			o.Mean = v
		} else {
			o.Std = v
		}
	}
	return o, nil
}

// openClassifier opens the model named by --onnx or --weights/--model. The
// returned close function releases it.
func openClassifier(cmd *cobra.Command, labels []string) (eval.Classifier, func() error, error) {
	onnxPath, weights, err := modelSource(cmd)
	if err != nil {
		return nil, nil, err
	}
	o, err := preprocessOverrides(cmd)
	if err != nil {
		return nil, nil, err
	}
	if weights != "" {
		if err := checkModelFile(weights, "--weights", kindNPZ); err != nil {
			return nil, nil, err
		}
		m, err := model.Load(weights)
		if err != nil {
			return nil, nil, err
		}
		c, err := eval.NewNative(m, o, labels)
		if err != nil {
			return nil, nil, preprocessUsage(cmd, err)
		}
		return c, func() error { return nil }, nil
	}
	opts, err := ortOptions(cmd)
	if err != nil {
		return nil, nil, err
	}
	if err := checkModelFile(onnxPath, "--onnx", kindONNX); err != nil {
		return nil, nil, err
	}
	p, err := runtime.Open(onnxPath, opts)
	if err != nil {
		return nil, nil, err
	}
	c, err := eval.NewONNX(p, o)
	if err != nil {
		return nil, nil, errors.Join(preprocessUsage(cmd, err), p.Close())
	}
	return c, p.Close, nil
}

// preprocessUsage turns "preprocessing unknown" into a usage error: the fix
// is a flag.
func preprocessUsage(cmd *cobra.Command, err error) error {
	if errors.Is(err, eval.ErrPreprocess) {
		return usageError{commandPrefixed{cmd.Name(), err}}
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
		RunE: runEval,
	}
	cmd.Flags().String("onnx", "", "ONNX model file (runs on ONNX Runtime: needs a cgo build and make setup)")
	addWeightsFlags(cmd)
	cmd.Flags().String("data", "", `dataset: IDX folder, image folder, or "mnist" (GoMNIST module data) (required)`)
	cmd.Flags().String("split", "test", "dataset split: train, test, or all (an image folder without train/ and test/ sub-folders is split 80/20 by a hash of each file's name; all takes every image)")
	cmd.Flags().Int("batch", eval.DefaultBatch, "images per batch")
	cmd.Flags().Int("limit", 0, "evaluate only the first N images (0 = all)")
	cmd.Flags().Int("top-k", 5, "k of the top-k accuracy")
	cmd.Flags().Bool("json", false, "print the report as JSON")
	cmd.Flags().String("plot", "", "write the confusion matrix as a PNG to this file")
	cmd.Flags().String("shard", "", shardHelp)
	cmd.Flags().String("report", "", `also write the JSON report to this file ("{shard}" is replaced by the shard index)`)
	addPreprocessFlags(cmd)
	addORTFlags(cmd)
	bindKey(cmd, "eval.batch", "batch")
	bindKey(cmd, "eval.top_k", "top-k")
	cmd.AddCommand(newEvalMergeCmd())
	return cmd
}

func runEval(cmd *cobra.Command, _ []string) error {
	dataPath, _ := cmd.Flags().GetString("data")
	if dataPath == "" {
		return usagef("--data is required")
	}
	split, _ := cmd.Flags().GetString("split")
	limit, _ := cmd.Flags().GetInt("limit")
	asJSON, _ := cmd.Flags().GetBool("json")
	plot, _ := cmd.Flags().GetString("plot")
	batch, err := configInt(cmd, "eval.batch", 1, 4096)
	if err != nil {
		return err
	}
	k, err := configInt(cmd, "eval.top_k", 1, math.MaxInt)
	if err != nil {
		return err
	}
	if limit < 0 {
		return usagef("--limit %d: must be >= 0", limit)
	}
	shardFlag, _ := cmd.Flags().GetString("shard")
	shard, err := parseShard(shardFlag, os.Getenv)
	if err != nil {
		return err
	}
	reportPath, _ := cmd.Flags().GetString("report")
	if reportPath != "" {
		reportPath = shardPath(reportPath, shard)
		if err := checkOutputPath(reportPath); err != nil {
			return fmt.Errorf("eval: --report: %w", err)
		}
	}
	// Model files and the plot path are checked before the dataset is read.
	if err := checkModelFlags(cmd); err != nil {
		return err
	}
	if plot != "" {
		if err := checkOutputPath(plot); err != nil {
			return fmt.Errorf("eval: --plot: %w", err)
		}
	}
	ds, err := openDataset(dataPath, split)
	if err != nil {
		return err
	}
	clf, closeFn, err := openClassifier(cmd, ds.Classes())
	if err != nil {
		return err
	}
	defer closeFn()
	if n, err := classCount(cmd, clf); err != nil {
		return err
	} else if n != len(ds.Classes()) {
		fmt.Fprintf(cmd.ErrOrStderr(), "bitrun: warning: the model has %d classes, the dataset %d (%s): accuracy compares class indices\n",
			n, len(ds.Classes()), dataPath)
	}
	total := ds.Len()
	if limit > 0 {
		total = min(total, limit)
	}
	if shard.Sharded() {
		fmt.Fprintf(cmd.ErrOrStderr(), "evaluating %s on %s (%s, shard %s of %d images)\n", clf.Name(), dataPath, split, shard, total)
	} else {
		fmt.Fprintf(cmd.ErrOrStderr(), "evaluating %s on %s (%s, %d images)\n", clf.Name(), dataPath, split, total)
	}
	rep, err := eval.Run(cmd.Context(), clf, ds, eval.Options{
		Batch: batch, Limit: limit, K: k, Shard: shard,
		Progress: progressPrinter(cmd.ErrOrStderr(), "eval"),
	})
	if err != nil {
		return err
	}
	rep.Dataset = fmt.Sprintf("%s (%s)", dataPath, split)
	if rep.ModelSHA256, err = modelFileSHA256(cmd); err != nil {
		return err
	}
	if reportPath != "" {
		if err := atomicfile.WriteJSON(reportPath, rep); err != nil {
			return fmt.Errorf("eval: --report: %w", err)
		}
	}
	// The report first: a plot that cannot be written loses nothing.
	if asJSON {
		err = eval.WriteJSON(cmd.OutOrStdout(), rep)
	} else {
		err = eval.WriteText(cmd.OutOrStdout(), rep)
	}
	if err != nil || plot == "" {
		return err
	}
	if err := eval.WriteConfusionPNG(plot, rep); err != nil {
		return err
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "confusion matrix written to %s\n", plot)
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
func classCount(cmd *cobra.Command, clf eval.Classifier) (int, error) {
	pre := clf.Preprocess()
	_, n, err := clf.Logits(cmd.Context(), make([]float32, pre.Channels*pre.Size*pre.Size), 1)
	return n, err
}

// modelFileSHA256 is the SHA-256 of the --onnx or --weights/--model file,
// recorded in reports so that shards of different models never merge.
func modelFileSHA256(cmd *cobra.Command) (string, error) {
	onnxPath, weights, err := modelSource(cmd)
	if err != nil {
		return "", err
	}
	return fileSHA256(onnxPath + weights)
}
