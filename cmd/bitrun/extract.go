package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/bitrun/bitrun/eval"
	"github.com/bitrun/bitrun/runtime"
	"github.com/spf13/cobra"
)

// extractOptions are the settings of bitrun extract: bound to its flags,
// completed by extractFlags and checked by validate.
type extractOptions struct {
	ONNX     string
	Data     string
	Split    string
	Out      string // NAME.npy; "{shard}" replaced by the shard index
	Output   string // the model output to keep
	Batch    int
	Limit    int
	ShardArg string // --shard as given, parsed into Shard
	Shard    eval.Shard
	PreFlags preprocessFlags // as given; checked into Pre by extractFlags
	Pre      eval.Overrides
	Runtime  runtime.Options
}

func newExtractCmd() *cobra.Command {
	var o extractOptions
	cmd := &cobra.Command{
		Use:   "extract --onnx FILE --data PATH --out FEATS.npy",
		Short: "Write a model's pre-logit features of every image of a dataset (for retrieval and linear probes)",
		Long: `Run an ONNX model over a labelled dataset and write its pre-logit
features (the "features" output of bitrun's BiT exports; --output picks
another output) with each image's label and file name:

  FEATS.npy         float32 [images, dim]
  FEATS.labels.npy  int64 [images], class indices
  FEATS.files.txt   one file name per line ("#INDEX" for IDX datasets)
  FEATS.json        manifest: model and its SHA-256, dataset, classes,
                    preprocessing, shard

Each file is written atomically; the manifest goes last. --shard I/N
extracts a deterministic 1/N of the dataset (the examples whose index
modulo N is I; --shard N takes I from $JOB_COMPLETION_INDEX), "{shard}" in
--out is replaced by I, and "bitrun extract merge" puts the shards back
together row for row, exactly as the unsharded run writes them.`,
		Example: `  bitrun extract --onnx runs/fmnist/model.onnx --data /usr/share/datasets/fashion-mnist --out feats.npy
  bitrun extract --onnx m.onnx --data DIR --split all --shard 1/3 --out feats-{shard}.npy
  bitrun extract merge --out feats.npy feats-0.npy feats-1.npy feats-2.npy`,
		Args: cobra.NoArgs,
		RunE: runE(bound(&o, extractFlags), runExtract),
	}
	f := cmd.Flags()
	f.StringVar(&o.ONNX, "onnx", "", "ONNX model file (runs on ONNX Runtime: needs a cgo build and make setup)")
	f.StringVar(&o.Data, "data", "", `dataset: IDX folder, image folder, or "mnist" (required)`)
	f.StringVar(&o.Split, "split", "test", "dataset split: train, test, or all")
	f.StringVar(&o.Out, "out", "", `features file NAME.npy; labels, file names and manifest go beside it ("{shard}" is replaced by the shard index) (required)`)
	f.StringVar(&o.Output, "output", eval.FeaturesOutput, "model output to write")
	f.IntVar(&o.Batch, "batch", eval.DefaultBatch, "images per batch")
	f.IntVar(&o.Limit, "limit", 0, "only the first N images (0 = all)")
	f.StringVar(&o.ShardArg, "shard", "", shardHelp)
	addPreprocessFlags(cmd, &o.PreFlags)
	addORTFlags(cmd)
	cmd.AddCommand(newExtractMergeCmd())
	return cmd
}

// extractFlags completes extractOptions with the shard, the preprocessing
// and the ONNX Runtime settings; nothing is read yet.
func extractFlags(cmd *cobra.Command, _ []string, o *extractOptions) error {
	var err error
	if o.Shard, err = parseShard(o.ShardArg, os.Getenv); err != nil {
		return err
	}
	if o.Pre, err = o.PreFlags.overrides(); err != nil {
		return err
	}
	if o.Runtime, err = ortOptions(cmd); err != nil {
		return err
	}
	o.Out = shardPath(o.Out, o.Shard)
	return nil
}

func (o extractOptions) validate() error {
	switch {
	case o.ONNX == "":
		return usagef("--onnx is required")
	case o.Data == "":
		return usagef("--data is required")
	case o.Out == "":
		return usagef("--out is required")
	case filepath.Ext(o.Out) != ".npy":
		return usagef("--out %q: want a NAME.npy file", o.Out)
	case o.Batch < 1 || o.Batch > 4096:
		return usagef("--batch %d: want 1 to 4096", o.Batch)
	case o.Limit < 0:
		return usagef("--limit %d: must be >= 0", o.Limit)
	}
	if err := checkModelFile(o.ONNX, "--onnx", kindONNX); err != nil {
		return err
	}
	return checkOutputFlag("extract", "--out", o.Out)
}

func runExtract(ctx context.Context, opts extractOptions, _, stderr io.Writer) error {
	ds, err := openDataset(opts.Data, opts.Split)
	if err != nil {
		return err
	}
	sum, err := fileSHA256(ctx, opts.ONNX)
	if err != nil {
		return err
	}
	p, err := runtime.Open(opts.ONNX, opts.Runtime)
	if err != nil {
		return err
	}
	defer p.Close()
	clf, err := eval.NewONNX(p, opts.Pre)
	if err != nil {
		return preprocessUsage("extract", err)
	}
	what := "all"
	if opts.Shard.Sharded() {
		what = "shard " + opts.Shard.String()
	}
	fmt.Fprintf(stderr, "extracting %q of %s on %s (%s, %s)\n", opts.Output, clf.Name(), opts.Data, opts.Split, what)
	f, err := eval.Extract(ctx, p, clf.Preprocess(), ds, eval.ExtractOptions{
		Batch: opts.Batch, Limit: opts.Limit, Output: opts.Output, Shard: opts.Shard,
		Progress: progressPrinter(stderr, "extract"),
	})
	if err != nil {
		return err
	}
	f.Model, f.ModelSHA256, f.Dataset = filepath.Base(opts.ONNX), sum, fmt.Sprintf("%s (%s)", opts.Data, opts.Split)
	if err := eval.WriteFeatures(opts.Out, f); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "wrote %d × %d features to %s\n", f.Rows, f.Dim, opts.Out)
	return nil
}

// extractMergeOptions are the settings of bitrun extract merge.
type extractMergeOptions struct {
	Parts []string // shard feature files (NAME.npy), one per shard
	Out   string   // merged NAME.npy
}

func newExtractMergeCmd() *cobra.Command {
	var opts extractMergeOptions
	cmd := &cobra.Command{
		Use:   "merge --out FEATS.npy SHARD.npy...",
		Short: "Put the feature files of every shard of a sharded extract back together",
		Long: `Combine the outputs of "bitrun extract --shard I/N" (one NAME.npy per
shard, with its labels, file names and manifest) into the files the
unsharded run writes, row for row. Shards of different models, datasets,
outputs or shard counts are refused, and so is a missing or repeated shard.`,
		Args: cobra.MinimumNArgs(1),
		RunE: runE(boundArgs(&opts, &opts.Parts), runExtractMerge),
	}
	cmd.Flags().StringVar(&opts.Out, "out", "", "merged features file NAME.npy (required)")
	return cmd
}

func (o extractMergeOptions) validate() error {
	if o.Out == "" || filepath.Ext(o.Out) != ".npy" {
		return usagef("--out %q: want a NAME.npy file", o.Out)
	}
	return checkOutputFlag("extract merge", "--out", o.Out)
}

func runExtractMerge(_ context.Context, opts extractMergeOptions, _, stderr io.Writer) error {
	parts, err := readShards(opts.Parts, eval.ReadFeatures)
	if err != nil {
		return err
	}
	m, err := eval.MergeFeatures(parts)
	if err != nil {
		return err
	}
	if err := eval.WriteFeatures(opts.Out, m); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "merged %d shards: %d × %d features to %s\n", len(parts), m.Rows, m.Dim, opts.Out)
	return nil
}
