package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/spf13/cobra"

	"github.com/bitrun/bitrun/export"
	"github.com/bitrun/bitrun/export/meta"
	"github.com/bitrun/bitrun/model"
)

func newExportCmd() *cobra.Command {
	var o exportOptions
	cmd := &cobra.Command{
		Use:   "export (--weights FILE | --model NAME) --out FILE",
		Short: "Export a BiT checkpoint to ONNX (WS folded, GroupNorm in standard ops, dynamic batch and size)",
		Long: `Export a BiT checkpoint (.npz) to an ONNX model with bitrun's own writer.

The graph takes "image" float32 [N,3,H,W] (N, H and W dynamic; pixels scaled
to [-1,1]) and returns "logits" [N,classes], "features" [N,C] (pre-logits) and
"probabilities" (softmax). Weight Standardization is folded into the kernels;
GroupNorm is an InstanceNormalization of the grouped view at --opset 17 (runs
everywhere) or GroupNormalization-21 at --opset 21. --trainable keeps the raw
kernels and computes WS in the graph instead, for fine-tuning in another
framework.

Metadata (bitrun.resolution, bitrun.mean, bitrun.std, bitrun.labels, ...)
lets predict, eval and serve preprocess images without flags.

Models over the 2 GB protobuf limit (R152x4) keep their weights in FILE.data
next to FILE (--external-data auto); keep the two files together. Files are
written atomically.`,
		Example: `  bitrun export --weights BiT-M-R50x1-CIFAR10.npz --out r50x1.onnx --labels cifar10.txt
  bitrun export --model BiT-M-R50x1 --out r50x1.onnx --resolution 224 --opset 21
  bitrun export --weights R152x4.npz --out r152x4.onnx   # writes r152x4.onnx.data too`,
		Args: cobra.NoArgs,
		RunE: runE(bound(&o, exportFlags), runExport),
	}
	addWeightsFlags(cmd, &o.weights)
	f := cmd.Flags()
	f.StringVar(&o.out, "out", "", "output ONNX file")
	f.IntVar(&o.resolution, "resolution", export.DefaultResolution, "image side recorded in the metadata (the graph accepts any size)")
	f.StringVar(&o.labelsFile, "labels", "", "class names: one per line, or a JSON array; count must equal the checkpoint's classes")
	// export.opset and export.external_data, read by exportFlags.
	f.Int("opset", export.DefaultOpset, fmt.Sprintf("ONNX opset, %d to %d (17-20: GroupNorm as InstanceNormalization of the grouped view; 21: GroupNormalization-21)", export.MinOpset, export.MaxOpset))
	f.BoolVar(&o.trainable, "trainable", false, "raw kernels as initializers and Weight Standardization in the graph")
	f.String("external-data", "auto", "weights in FILE.data: auto (only over 2 GB), always, never")
	f.BoolVar(&o.force, "force", false, "overwrite an existing output file")
	bindKey(cmd, "export.opset", "opset")
	bindKey(cmd, "export.external_data", "external-data")
	return cmd
}

// exportOptions is what export writes: bound to its flags, completed with
// the configuration by exportFlags and checked by validate.
type exportOptions struct {
	weights      weightsRef // resolved (a --model pulled) by runExport, after validate
	out          string
	resolution   int
	labelsFile   string
	labels       []string // read from labelsFile by validate
	trainable    bool
	force        bool
	opset        int
	externalData string // auto, always or never
	external     export.ExternalMode
}

// exportFlags completes the export options with the zoo settings of a
// --model and the configuration keys.
func exportFlags(cmd *cobra.Command, _ []string, o *exportOptions) error {
	if err := o.weights.complete(cmd); err != nil {
		return err
	}
	var err error
	if o.opset, err = configInt(cmd, "export.opset", math.MinInt32, math.MaxInt32); err != nil { // the range is validate's
		return err
	}
	o.externalData = cfg.GetString("export.external_data")
	return nil
}

// validate checks the options (bad values are usage errors), refuses an
// existing --out without --force and reads --labels: everything a --model
// download must not wait for.
func (o *exportOptions) validate() error {
	if err := o.weights.checkOne("", "", "give the weights: --weights FILE or --model NAME"); err != nil {
		return err
	}
	switch {
	case o.out == "":
		return usagef("--out is required")
	case checkResolution("--resolution", o.resolution, false) != nil:
		return checkResolution("--resolution", o.resolution, false)
	}
	var err error
	if o.external, err = export.ParseExternalMode(o.externalData); err != nil {
		return usagef("--external-data: %v", err)
	}
	if o.opset < export.MinOpset || o.opset > export.MaxOpset {
		return usagef("--opset %d is not supported: use %d to %d (17: GroupNorm as InstanceNormalization of the grouped view; 21: GroupNormalization-21)",
			o.opset, export.MinOpset, export.MaxOpset)
	}
	if err := checkOverwrite(o.out, o.force); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	o.labels, err = readLabels("export", o.labelsFile, meta.ParseLabels)
	return err
}

// runExport exports o.weights (pulling a --model first) to o.out; the
// summary line (and progress of large models) goes to stderr.
func runExport(ctx context.Context, o exportOptions, _, stderr io.Writer) error {
	weights, err := o.weights.resolve(ctx)
	if err != nil {
		return err
	}
	out, labels, labelsFile := o.out, o.labels, o.labelsFile
	opset, trainable, resolution, ext := o.opset, o.trainable, o.resolution, o.external
	if err := checkModelFile(weights, "--weights", kindNPZ); err != nil {
		return err
	}
	_, digest, err := fileDigest(ctx, weights)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	m, err := model.Load(weights)
	if err != nil {
		return err
	}
	if labels != nil && len(labels) != m.Config.Classes {
		return fmt.Errorf("export: --labels %s has %d labels but %s has %d classes", labelsFile, len(labels), weights, m.Config.Classes)
	}
	version, _ := buildVersion()
	res, err := export.Export(ctx, out, m.Config, m.Params, export.Options{
		Opset: opset, Trainable: trainable, Resolution: resolution, Labels: labels,
		SourceSHA: digest, Version: version, External: ext,
		Progress: byteProgress(stderr, "export", m.Params.Count()*4),
	})
	if err != nil {
		// A label file that does not match the checkpoint is a state error
		// (the error alone); bad option values are usage errors.
		if errors.Is(err, export.ErrOpset) || errors.Is(err, export.ErrOptions) {
			return usageError{err}
		}
		if errors.Is(err, export.ErrTooLarge) {
			return fmt.Errorf("%w (use --external-data auto or always)", err)
		}
		return err
	}
	variant := "inference"
	if trainable {
		variant = "trainable"
	}
	fmt.Fprintf(stderr, "exported %s: %s, %d classes, opset %d, %s graph, %s", res.Path, m.Config.Name,
		m.Config.Classes, res.Opset, variant, byteSize(res.Bytes))
	if res.DataPath != "" {
		fmt.Fprintf(stderr, " + %s external data in %s", byteSize(res.DataBytes), res.DataPath)
	}
	fmt.Fprintf(stderr, ", %d nodes, %v\n", res.Nodes, res.Duration.Round(time.Millisecond))
	return nil
}

// fileSHA256 is the hex SHA-256 of the file at path, given up when ctx is
// done.
func fileSHA256(ctx context.Context, path string) (string, error) {
	_, digest, err := fileDigest(ctx, path)
	return digest, err
}

// byteProgress reports bytes written on w when the total is large enough to
// take a while (64 MB): an updating line on a terminal, a line per 10%
// otherwise.
func byteProgress(w io.Writer, what string, total int64) func(done, total int64) {
	if total < 64<<20 {
		return nil
	}
	show := progressLines(w)
	start := time.Now()
	return func(done, total int64) {
		pct := 100 * done / max(total, 1)
		rate := float64(done) / max(time.Since(start).Seconds(), 1e-3)
		show(fmt.Sprintf("%s %s / %s (%d%%, %s/s)", what, byteSize(done), byteSize(total), pct, byteSize(int64(rate))), pct, done == total)
	}
}

// byteSize formats n with a binary unit: 1536 -> "1.5 KiB".
func byteSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
