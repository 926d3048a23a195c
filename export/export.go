package export

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/bitrun/bitrun/export/meta"
	"github.com/bitrun/bitrun/export/onnxpb"
	"github.com/bitrun/bitrun/internal/atomicfile"
	"github.com/bitrun/bitrun/model"
)

// Opset range this package writes.
const (
	DefaultOpset = 17 // GroupNorm as InstanceNormalization of the grouped view
	MinOpset     = 17
	MaxOpset     = 21 // 21 and up: GroupNormalization-21
)

// DefaultResolution is the bitrun.resolution written when Options.Resolution is 0.
const DefaultResolution = 128

// ExternalThreshold is the smallest tensor (bytes) moved to external data;
// smaller ones stay inline, as the ONNX tools do.
const ExternalThreshold = 1024

// externalAlign aligns external tensors to the page size so that readers
// can memory-map them.
const externalAlign = 4096

// Errors callers branch on.
var (
	// ErrOpset is wrapped when the requested opset is not supported.
	ErrOpset = errors.New("export: unsupported opset")
	// ErrLabels is wrapped when the label list does not fit the model.
	ErrLabels = errors.New("export: labels do not match the model")
	// ErrOptions is wrapped for other invalid options.
	ErrOptions = errors.New("export: invalid options")
	// ErrTooLarge is wrapped when a model does not fit in one protobuf
	// message and external data is disabled.
	ErrTooLarge = errors.New("export: model exceeds the 2 GB protobuf limit")
)

// ExternalMode chooses where the weights go.
type ExternalMode int

const (
	// ExternalAuto keeps the weights inline unless the model would exceed
	// the 2 GB protobuf limit (R152x4 and larger).
	ExternalAuto ExternalMode = iota
	// ExternalAlways writes every tensor of ExternalThreshold bytes or more to
	// the side file PATH.data.
	ExternalAlways
	// ExternalNever keeps everything inline; models over 2 GB fail with ErrTooLarge.
	ExternalNever
)

func (m ExternalMode) String() string {
	switch m {
	case ExternalAuto:
		return "auto"
	case ExternalAlways:
		return "always"
	case ExternalNever:
		return "never"
	}
	return "ExternalMode(" + strconv.Itoa(int(m)) + ")"
}

// ParseExternalMode parses "auto", "always" or "never".
func ParseExternalMode(s string) (ExternalMode, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "auto", "":
		return ExternalAuto, nil
	case "always":
		return ExternalAlways, nil
	case "never":
		return ExternalNever, nil
	}
	return 0, fmt.Errorf("%w: external data mode %q (want auto, always or never)", ErrOptions, s)
}

// Options configures an export. The zero value exports the inference graph
// at opset 17 with BiT preprocessing metadata (resolution 128, mean and std
// 0.5), no labels, and external data only when needed.
type Options struct {
	Opset      int          // 0: DefaultOpset; else MinOpset..MaxOpset (others, negative included, are ErrOpset)
	Trainable  bool         // raw kernels as initializers, WS computed in the graph
	Resolution int          // bitrun.resolution; 0: DefaultResolution; negative is ErrOptions
	Labels     []string     // class names, len must equal the class count; nil for none
	Mean, Std  [3]float32   // preprocessing on [0,1] pixels; zero means BiT's 0.5, 0.5
	SourceSHA  string       // hex SHA-256 of the checkpoint; "" omits bitrun.source_sha256
	Version    string       // bitrun.version; "" means "(devel)"
	External   ExternalMode // where the weights go
	// Logger receives a summary line per export; nil discards.
	Logger *slog.Logger
	// Progress, when set, is called after each weight tensor is written with
	// the weight bytes done and the total.
	Progress func(done, total int64)
}

func (o Options) normalized(cfg model.Config) (Options, error) {
	if o.Opset == 0 {
		o.Opset = DefaultOpset
	}
	if o.Opset < MinOpset || o.Opset > MaxOpset {
		return o, fmt.Errorf("%w: %d (want %d to %d; 21 uses GroupNormalization-21)", ErrOpset, o.Opset, MinOpset, MaxOpset)
	}
	if o.Resolution == 0 {
		o.Resolution = DefaultResolution
	}
	if o.Resolution < 0 {
		return o, fmt.Errorf("%w: resolution %d", ErrOptions, o.Resolution)
	}
	if o.Labels != nil && len(o.Labels) != cfg.Classes {
		return o, fmt.Errorf("%w: %d labels for %d classes", ErrLabels, len(o.Labels), cfg.Classes)
	}
	if o.Mean == ([3]float32{}) && o.Std == ([3]float32{}) {
		o.Mean = [3]float32{0.5, 0.5, 0.5}
		o.Std = [3]float32{0.5, 0.5, 0.5}
	}
	for _, s := range o.Std {
		if !(s > 0) {
			return o, fmt.Errorf("%w: std %v must be positive", ErrOptions, o.Std)
		}
	}
	if o.Version == "" {
		o.Version = "(devel)"
	}
	switch o.External {
	case ExternalAuto, ExternalAlways, ExternalNever:
	default:
		return o, fmt.Errorf("%w: external mode %d", ErrOptions, o.External)
	}
	return o, nil
}

// irVersion is the IR version that goes with an opset.
func irVersion(opset int) int64 {
	switch {
	case opset >= 21:
		return 10
	case opset >= 19:
		return 9
	}
	return 8
}

// plan is a built graph whose weights are not yet materialised.
type plan struct {
	m       *onnxpb.Model
	weights []*weight
	opts    Options
}

func newPlan(cfg model.Config, params model.Params, opts Options) (*plan, error) {
	if err := model.Check(cfg, params); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	opts, err := opts.normalized(cfg)
	if err != nil {
		return nil, err
	}
	b := newBuilder(cfg, params, int64(opts.Opset), opts.Trainable)
	b.build()
	variant := "inference"
	if opts.Trainable {
		variant = "trainable"
	}
	md := meta.Meta{
		Arch: cfg.Name, Classes: cfg.Classes, Labels: opts.Labels, Resolution: opts.Resolution,
		Mean: opts.Mean, Std: opts.Std, Layout: "NCHW", SourceSHA: opts.SourceSHA,
		Version: opts.Version, Variant: variant,
	}.Map()
	m := &onnxpb.Model{
		IRVersion:       irVersion(opts.Opset),
		OpsetImport:     []onnxpb.OpsetID{{Domain: "", Version: int64(opts.Opset)}},
		ProducerName:    Producer,
		ProducerVersion: opts.Version,
		DocString:       fmt.Sprintf("BiT %s (ResNet-v2, GroupNorm, Weight Standardization), %d classes, %s graph", cfg.Name, cfg.Classes, variant),
		Graph:           b.g,
	}
	for _, k := range meta.Order {
		if v, ok := md[k]; ok {
			m.MetadataProps = append(m.MetadataProps, onnxpb.StringStringEntry{Key: k, Value: v})
		}
	}
	return &plan{m: m, weights: b.weights, opts: opts}, nil
}

// inlineSize is the serialized size with every weight inline.
func (p *plan) inlineSize() int64 {
	n := int64(p.m.Size())
	for _, w := range p.weights {
		n += 4*w.n + 16 // raw_data tag and length prefix, generously
	}
	return n
}

func (p *plan) weightBytes() int64 {
	var n int64
	for _, w := range p.weights {
		n += 4 * w.n
	}
	return n
}

// external decides whether the weights go to a data file.
func (p *plan) external() (bool, error) {
	fits := p.inlineSize() <= onnxpb.MaxMessageSize
	switch p.opts.External {
	case ExternalAlways:
		return true, nil
	case ExternalNever:
		if !fits {
			return false, fmt.Errorf("%w: %s needs about %d bytes inline; use external data", ErrTooLarge, p.m.Metadata()[meta.Arch], p.inlineSize())
		}
		return false, nil
	}
	return !fits, nil
}

// Build returns the ONNX model for cfg and params with every weight inline,
// for callers that want the message itself (tests, tools). Use Export to
// write files. Models over the 2 GB protobuf limit fail with ErrTooLarge.
func Build(cfg model.Config, params model.Params, opts Options) (*onnxpb.Model, error) {
	p, err := newPlan(cfg, params, opts)
	if err != nil {
		return nil, err
	}
	if p.inlineSize() > onnxpb.MaxMessageSize {
		return nil, fmt.Errorf("%w: %s needs about %d bytes inline; use Export with external data", ErrTooLarge, cfg.Name, p.inlineSize())
	}
	for _, w := range p.weights {
		w.t.RawData = onnxpb.Float32Bytes(w.fill())
	}
	return p.m, nil
}

// Result describes what Export wrote.
type Result struct {
	Path         string        // the .onnx file
	DataPath     string        // the external data file; "" when inline
	Bytes        int64         // size of the .onnx file
	DataBytes    int64         // size of the external data file
	Opset        int           // opset written
	Nodes        int           // graph nodes
	Initializers int           // graph initializers
	Params       int64         // scalar weights written
	Duration     time.Duration // wall time
}

// DataPathFor is the external data file that goes with an .onnx path.
func DataPathFor(path string) string { return path + ".data" }

// Export writes the ONNX graph of cfg and params to path, atomically: each
// file is written to a pending file (internal/atomicfile) in the same folder
// and committed (the data file first), so a failed or cancelled export never leaves
// a partial file at path. With external data the weights go to
// DataPathFor(path), referenced by its base name. Export checks ctx between
// tensors.
//
// Memory: the kernels are folded one at a time as they are written, so an
// external-data export needs little beyond params itself; an inline export
// holds the serialized model (at most 2 GB) in memory.
func Export(ctx context.Context, path string, cfg model.Config, params model.Params, opts Options) (*Result, error) {
	start := time.Now()
	p, err := newPlan(cfg, params, opts)
	if err != nil {
		return nil, err
	}
	opts = p.opts
	external, err := p.external()
	if err != nil {
		return nil, err
	}
	res := &Result{Path: path, Opset: opts.Opset, Nodes: len(p.m.Graph.Nodes),
		Initializers: len(p.m.Graph.Initializers), Params: params.Count()}
	total, done := p.weightBytes(), int64(0)
	progress := func(n int64) {
		done += n
		if opts.Progress != nil {
			opts.Progress(done, total)
		}
	}
	// Both files are pending until the end; the data file is committed
	// first, so a model file never names data that is not there yet.
	var data *atomicfile.File
	if external {
		res.DataPath = DataPathFor(path)
		data, res.DataBytes, err = p.writeData(ctx, res.DataPath, progress)
		if err != nil {
			return nil, err
		}
		defer data.Cleanup()
	} else {
		// Inline: each weight is folded and encoded while the model streams
		// out, so only one tensor's copy exists at a time.
		for _, w := range p.weights {
			w.t.DeferredLen = int(4 * w.n)
			w.t.Deferred = func() ([]byte, error) {
				if err := ctx.Err(); err != nil {
					return nil, err
				}
				raw := onnxpb.Float32Bytes(w.fill())
				progress(4 * w.n)
				return raw, nil
			}
		}
	}
	f, err := writePending(path, func(w io.Writer) error {
		bw := bufio.NewWriterSize(w, 1<<20)
		n, err := p.m.WriteTo(bw)
		if err != nil {
			return err
		}
		res.Bytes = n
		return bw.Flush()
	})
	for _, w := range p.weights {
		w.t.Deferred, w.t.RawData = nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Cleanup()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	if data != nil {
		if err := data.Commit(); err != nil {
			return nil, fmt.Errorf("export: %w", err)
		}
	}
	if err := f.Commit(); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	res.Duration = time.Since(start)
	if opts.Logger != nil {
		opts.Logger.Info("exported ONNX model", "path", path, "arch", cfg.Name, "opset", opts.Opset,
			"variant", p.m.Metadata()[meta.Variant], "bytes", res.Bytes, "data_bytes", res.DataBytes,
			"nodes", res.Nodes, "duration", res.Duration)
	}
	return res, nil
}

// writeData streams the large weights to a pending data file for dataPath
// and points their tensors at it; small ones stay inline. It returns the
// pending file (the caller commits or cleans it up) and its size.
func (p *plan) writeData(ctx context.Context, dataPath string, progress func(int64)) (*atomicfile.File, int64, error) {
	location := filepath.Base(dataPath)
	var size int64
	f, err := writePending(dataPath, func(w io.Writer) error {
		bw := bufio.NewWriterSize(w, 1<<20)
		var off int64
		for _, wt := range p.weights {
			if err := ctx.Err(); err != nil {
				return err
			}
			data := wt.fill()
			if 4*wt.n < ExternalThreshold {
				wt.t.RawData = onnxpb.Float32Bytes(data)
				progress(4 * wt.n)
				continue
			}
			if pad := (externalAlign - off%externalAlign) % externalAlign; pad > 0 {
				if _, err := bw.Write(make([]byte, pad)); err != nil {
					return err
				}
				off += pad
			}
			if err := writeFloats(bw, data); err != nil {
				return err
			}
			wt.t.RawData = nil
			wt.t.DataLocation = onnxpb.LocationExternal
			wt.t.ExternalData = []onnxpb.StringStringEntry{
				{Key: "location", Value: location},
				{Key: "offset", Value: strconv.FormatInt(off, 10)},
				{Key: "length", Value: strconv.FormatInt(4*wt.n, 10)},
			}
			off += 4 * wt.n
			progress(4 * wt.n)
		}
		size = off
		return bw.Flush()
	})
	if err != nil {
		return nil, 0, err
	}
	return f, size, nil
}

// writeFloats writes data little-endian in bounded chunks.
func writeFloats(w io.Writer, data []float32) error {
	const chunk = 1 << 16
	for len(data) > 0 {
		n := min(chunk, len(data))
		if _, err := w.Write(onnxpb.Float32Bytes(data[:n])); err != nil {
			return err
		}
		data = data[n:]
	}
	return nil
}

// writePending writes a pending file for path through fill. On failure
// nothing is left; on success the caller commits or cleans it up.
func writePending(path string, fill func(io.Writer) error) (*atomicfile.File, error) {
	f, err := atomicfile.Create(path)
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	if err := fill(f); err != nil {
		f.Cleanup()
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return nil, fmt.Errorf("export: %w", err)
		}
		return nil, fmt.Errorf("export: writing %s: %w", path, err)
	}
	return f, nil
}
