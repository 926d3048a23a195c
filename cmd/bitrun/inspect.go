package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/bitrun/bitrun/internal/digest"
	"github.com/bitrun/bitrun/model"
)

// inspectReport is what `bitrun inspect` prints (as text or --json).
type inspectReport struct {
	File       string        `json:"file"`
	Size       int64         `json:"size"`
	SHA256     string        `json:"sha256"`
	Arch       string        `json:"arch"`
	Classes    int           `json:"classes"`
	Parameters int64         `json:"parameters"`
	Arrays     int           `json:"arrays"`
	Config     model.Config  `json:"config"`
	Resolution int           `json:"resolution"`
	FLOPs      int64         `json:"flops"` // multiply-adds x2 for one image at Resolution
	Stages     []model.Stage `json:"stages"`
}

func newInspectCmd() *cobra.Command {
	var o inspectOptions
	cmd := &cobra.Command{
		Use:   "inspect [FILE]",
		Short: "Describe a checkpoint (architecture, parameters, per-stage shapes) or an ONNX model",
		Long: `Show what a BiT checkpoint (.npz) holds: the architecture inferred from its
keys and shapes, the class count, the parameter count, the channels, stride
and output size of every stage at an input resolution, the file size and its
SHA-256. Only the array headers are parsed, so large checkpoints inspect
quickly; the file is read once in full for the digest.

For an ONNX model (told apart by its bytes, not its name) it shows the
inputs and outputs with their types and shapes, the opsets, the node and
parameter counts and the metadata (bitrun.* keys: labels, resolution,
normalisation, for a bitrun export).`,
		Example: `  bitrun inspect r50x1.npz
  bitrun inspect --resolution 128 --json r50x1.npz`,
		Args: cobra.MaximumNArgs(1),
		RunE: runE(bound(&o, inspectFlags), runInspect),
	}
	cmd.Flags().BoolVar(&o.json, "json", false, "print JSON instead of text")
	cmd.Flags().IntVar(&o.resolution, "resolution", 224, "input resolution for the output sizes and FLOPs")
	addWeightsFlags(cmd, &o.weights)
	return cmd
}

// inspectOptions is what inspect describes: bound to its flags, completed
// by inspectFlags and checked by validate.
type inspectOptions struct {
	file       string     // the FILE argument
	weights    weightsRef // or --weights/--model
	resolution int        // for the stage sizes and FLOPs
	json       bool
}

// inspectFlags completes inspect's options with its FILE argument and the
// zoo settings of a --model.
func inspectFlags(cmd *cobra.Command, args []string, o *inspectOptions) error {
	if len(args) == 1 {
		o.file = args[0]
	}
	return o.weights.complete(cmd)
}

func (o inspectOptions) validate() error {
	if err := checkResolution("--resolution", o.resolution, false); err != nil {
		return err
	}
	return o.weights.checkOne(o.file, "give the checkpoint as an argument or with --weights/--model, not both",
		"no checkpoint: give FILE, --weights FILE or --model NAME")
}

// runInspect describes the checkpoint or ONNX model on stdout.
func runInspect(ctx context.Context, o inspectOptions, stdout, _ io.Writer) error {
	path := o.file
	if path == "" {
		var err error
		if path, err = o.weights.resolve(ctx); err != nil {
			return err
		}
	}
	asJSON, res := o.json, o.resolution
	kind, err := sniffFile(path)
	if err != nil {
		return fmt.Errorf("inspect: %w", err)
	}
	out := stdout
	switch kind {
	case kindNPZ:
	case kindOther:
		if !strings.EqualFold(filepath.Ext(path), ".npz") {
			return fmt.Errorf("inspect: %s: neither a .npz checkpoint nor an ONNX model", path)
		}
		// A damaged checkpoint: the .npz reader says what is wrong.
	case kindONNX:
		rep, err := inspectONNX(ctx, path)
		if err != nil {
			return err
		}
		if asJSON {
			return writeJSON(out, rep)
		}
		return printONNXInspect(out, rep)
	default:
		return fmt.Errorf("inspect: %s: a %s, neither a .npz checkpoint nor an ONNX model", path, kind)
	}
	rep, err := inspectFile(ctx, path, res)
	if err != nil {
		return err
	}
	if asJSON {
		return writeJSON(out, rep)
	}
	return printInspect(out, rep)
}

func inspectFile(ctx context.Context, path string, res int) (*inspectReport, error) {
	shapes, err := model.LoadNPZShapes(path)
	if err != nil {
		return nil, err
	}
	cfg, err := model.InferShapes(shapes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := model.CheckShapes(cfg, shapes); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	stages, err := cfg.Stages(res)
	if err != nil {
		return nil, err
	}
	rep := &inspectReport{File: path, Arch: cfg.Name, Classes: cfg.Classes, Arrays: len(shapes),
		Config: cfg, Resolution: res, Stages: stages}
	for _, s := range shapes {
		n := int64(1)
		for _, d := range s {
			n *= int64(d)
		}
		rep.Parameters += n
	}
	for _, s := range stages {
		rep.FLOPs += s.FLOPs
	}
	rep.Size, rep.SHA256, err = fileDigest(ctx, path)
	if err != nil {
		return nil, err
	}
	return rep, nil
}

// verified holds the digests zoo.Pull verified in this process, by path
// (verifiedDigest), so that a checkpoint of gigabytes pulled for --model is
// not read again to hash it.
var verified sync.Map

// verifiedDigest is a file's SHA-256 as verified, with the size and
// modification time it had then.
type verifiedDigest struct {
	size   int64
	mtime  time.Time
	sha256 string
}

func (d verifiedDigest) same(st os.FileInfo) bool {
	return st.Size() == d.size && st.ModTime().Equal(d.mtime)
}

// rememberDigest records sum, the verified SHA-256 of the file at path as
// it is now.
func rememberDigest(path, sum string) {
	if st, err := os.Stat(path); err == nil && sum != "" {
		verified.Store(path, verifiedDigest{size: st.Size(), mtime: st.ModTime(), sha256: sum})
	}
}

// fileDigest returns the size and hex SHA-256 of a file, giving up when ctx is done.
func fileDigest(ctx context.Context, path string) (int64, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, "", err
	}
	defer f.Close()
	var size int64
	if st, err := f.Stat(); err == nil {
		if d, ok := verified.Load(path); ok && d.(verifiedDigest).same(st) {
			return st.Size(), d.(verifiedDigest).sha256, nil
		}
		size = st.Size()
	}
	sum, n, err := digest.SHA256(ctx, f, size, nil)
	return n, sum, err
}

func printInspect(w io.Writer, r *inspectReport) error {
	c := r.Config
	fmt.Fprintf(w, "file:        %s\n", r.File)
	fmt.Fprintf(w, "size:        %s bytes (%s)\n", groupDigits(r.Size), byteSize(r.Size))
	fmt.Fprintf(w, "sha256:      %s\n", r.SHA256)
	fmt.Fprintf(w, "arch:        %s\n", r.Arch)
	fmt.Fprintf(w, "classes:     %d\n", r.Classes)
	fmt.Fprintf(w, "parameters:  %s (%d arrays)\n", groupDigits(r.Parameters), r.Arrays)
	fmt.Fprintf(w, "groupnorm:   %d groups\n", c.Groups)
	fmt.Fprintf(w, "resolution:  %d (%.2f GFLOPs per image)\n\n", r.Resolution, float64(r.FLOPs)/1e9)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "stage\tunits\tin\tmid\tout\tstride\toutput\tparams\tGFLOPs\t")
	for _, s := range r.Stages {
		units, mid := "-", "-"
		if s.Units > 0 {
			units = fmt.Sprint(s.Units)
		}
		if s.Mid > 0 {
			mid = fmt.Sprint(s.Mid)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\t%d\t%dx%d\t%s\t%.3f\t\n", s.Name, units, s.In, mid, s.Out,
			s.Stride, s.Size, s.Size, groupDigits(s.Params), float64(s.FLOPs)/1e9)
	}
	return tw.Flush()
}
