package eval

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/bitrun/bitrun/data"
	"github.com/bitrun/bitrun/export"
	"github.com/bitrun/bitrun/export/meta"
	"github.com/bitrun/bitrun/model"
	"github.com/bitrun/bitrun/nn"
	"github.com/bitrun/bitrun/runtime"
)

// ErrPreprocess is wrapped when a classifier's preprocessing cannot be
// worked out (neither the model nor the overrides say) or is invalid.
var ErrPreprocess = errors.New("eval: unknown preprocessing")

// Metadata keys of bitrun-exported models (package meta's).
const (
	MetaResolution = meta.Resolution
	MetaMean       = meta.Mean
	MetaStd        = meta.Std
	MetaLabels     = meta.Labels
)

// Preprocess is how images are turned into a classifier's input: square
// bilinear resize to Size, Channels channels, normalised with Norm.
type Preprocess struct {
	Size     int       `json:"size"`
	Channels int       `json:"channels"`
	Norm     data.Norm `json:"-"`
	Mean     []float32 `json:"mean"` // Norm.Mean, for reports
	Std      []float32 `json:"std"`
	// Source says where each part came from, e.g. "size: input shape".
	Source []string `json:"source,omitempty"`
}

// Overrides are user-supplied preprocessing values; zero fields are unset.
// Set fields beat model metadata; a fixed model input dim that disagrees
// with an override is an error.
type Overrides struct {
	Size      int
	Channels  int
	Mean, Std []float32 // 1 value (all channels) or 3
}

// Classifier turns preprocessed batches into class scores.
type Classifier interface {
	// Preprocess is the input preprocessing the classifier expects.
	Preprocess() Preprocess
	// Labels are the class names, nil when unknown.
	Labels() []string
	// Logits runs x (n×Channels×Size×Size, NCHW) and returns n×classes
	// scores row-major and the class count.
	Logits(ctx context.Context, x []float32, n int) (logits []float32, classes int, err error)
	// Name describes the classifier for reports, e.g. "onnx m.onnx (cpu)".
	Name() string
}

// ParseFloats reads "a,b,c" or a JSON array of numbers (meta.ParseFloats).
func ParseFloats(s string) ([]float32, error) { return meta.ParseFloats(s) }

// ParseLabels reads a JSON array of strings or one label per line
// (meta.ParseLabels, as every reader does, so label indices agree across
// predict, eval, export and serve); no labels give nil.
func ParseLabels(s string) ([]string, error) {
	labels, err := meta.ParseLabels(s)
	if err != nil {
		return nil, fmt.Errorf("eval: %w", err)
	}
	if len(labels) == 0 {
		return nil, nil
	}
	return labels, nil
}

// norm builds a data.Norm from 1 or 3 values each.
func norm(mean, std []float32) (data.Norm, error) {
	var n data.Norm
	var err error
	if n.Mean, err = meta.Triple(mean); err != nil {
		return n, fmt.Errorf("%w: mean: %w", ErrPreprocess, err)
	}
	if n.Std, err = meta.Triple(std); err != nil {
		return n, fmt.Errorf("%w: std: %w", ErrPreprocess, err)
	}
	for _, s := range n.Std {
		if !(s > 0) {
			return n, fmt.Errorf("%w: std values must be positive, got %v", ErrPreprocess, n.Std)
		}
	}
	return n, nil
}

// ResolvePreprocess works out preprocessing from a model input shape
// (NCHW, negative = dynamic), its metadata and overrides; see ONNX.
func ResolvePreprocess(shape []int64, md map[string]string, o Overrides) (Preprocess, error) {
	var p Preprocess
	if len(shape) != 4 {
		return p, fmt.Errorf("%w: model input %v is not NCHW (rank 4)", ErrPreprocess, shape)
	}
	// Channels: fixed input dim, else override.
	switch {
	case shape[1] > 0:
		p.Channels = int(shape[1])
		if o.Channels != 0 && o.Channels != p.Channels {
			return p, fmt.Errorf("%w: --channels %d but the model input has %d channels", ErrPreprocess, o.Channels, p.Channels)
		}
		p.Source = append(p.Source, "channels: input shape")
	case o.Channels != 0:
		p.Channels = o.Channels
		p.Source = append(p.Source, "channels: override")
	default:
		return p, fmt.Errorf("%w: the model's channel dim is dynamic; give the channel count (--channels 1 or 3)", ErrPreprocess)
	}
	if p.Channels != 1 && p.Channels != 3 {
		return p, fmt.Errorf("%w: %d input channels; only 1 or 3 are supported", ErrPreprocess, p.Channels)
	}
	// Size: fixed square input, else override, else metadata.
	h, w := shape[2], shape[3]
	switch {
	case h > 0 || w > 0:
		if h != w {
			return p, fmt.Errorf("%w: model input is %d×%d; only square (or dynamic) inputs are supported", ErrPreprocess, h, w)
		}
		p.Size = int(h)
		if o.Size != 0 && o.Size != p.Size {
			return p, fmt.Errorf("%w: --resolution %d but the model input is fixed at %d×%d", ErrPreprocess, o.Size, h, w)
		}
		p.Source = append(p.Source, "size: input shape")
	case o.Size != 0:
		p.Size = o.Size
		p.Source = append(p.Source, "size: override")
	case md[MetaResolution] != "":
		v, err := strconv.Atoi(strings.TrimSpace(md[MetaResolution]))
		if err != nil || v <= 0 {
			return p, fmt.Errorf("%w: metadata %s %q is not a positive integer", ErrPreprocess, MetaResolution, md[MetaResolution])
		}
		p.Size = v
		p.Source = append(p.Source, "size: metadata "+MetaResolution)
	default:
		return p, fmt.Errorf("%w: the model's input size is dynamic and it has no %s metadata; give the resolution (--resolution N)", ErrPreprocess, MetaResolution)
	}
	if p.Size <= 0 || p.Size > 8192 {
		return p, fmt.Errorf("%w: resolution %d out of range [1, 8192]", ErrPreprocess, p.Size)
	}
	// Normalisation: overrides, else metadata.
	mean, std := o.Mean, o.Std
	src := "override"
	if mean == nil && std == nil {
		ms, ss := md[MetaMean], md[MetaStd]
		if ms == "" || ss == "" {
			return p, fmt.Errorf("%w: the model has no %s/%s metadata; give the normalisation (--mean and --std on [0,1] pixels; BiT uses 0.5 and 0.5)", ErrPreprocess, MetaMean, MetaStd)
		}
		var err error
		if mean, err = ParseFloats(ms); err != nil {
			return p, fmt.Errorf("%w: metadata %s: %w", ErrPreprocess, MetaMean, err)
		}
		if std, err = ParseFloats(ss); err != nil {
			return p, fmt.Errorf("%w: metadata %s: %w", ErrPreprocess, MetaStd, err)
		}
		src = "metadata"
	} else if mean == nil || std == nil {
		return p, fmt.Errorf("%w: give both --mean and --std", ErrPreprocess)
	}
	n, err := norm(mean, std)
	if err != nil {
		return p, err
	}
	p.setNorm(n)
	p.Source = append(p.Source, "norm: "+src)
	return p, nil
}

func (p *Preprocess) setNorm(n data.Norm) {
	p.Norm = n
	p.Mean = append([]float32(nil), n.Mean[:p.Channels]...)
	p.Std = append([]float32(nil), n.Std[:p.Channels]...)
}

// ONNX is a Classifier over a runtime.Predictor. It works with any ONNX
// classifier with one float32 NCHW input and an [N,classes] output.
type ONNX struct {
	p      *runtime.Predictor
	owned  bool // opened by OpenONNX: Close closes p
	pre    Preprocess
	labels []string
	output string
}

// OpenONNX opens the model at path with ONNX Runtime and wraps it as
// NewONNX does. The classifier owns the session: Close it.
func OpenONNX(path string, ro runtime.Options, o Overrides) (*ONNX, error) {
	p, err := runtime.Open(path, ro)
	if err != nil {
		return nil, err
	}
	c, err := NewONNX(p, o)
	if err != nil {
		return nil, errors.Join(err, p.Close())
	}
	c.owned = true
	return c, nil
}

// Close closes the session of a classifier from OpenONNX; one from NewONNX
// leaves its predictor to the caller and Close does nothing.
func (c *ONNX) Close() error {
	if !c.owned {
		return nil
	}
	return c.p.Close()
}

// NewONNX wraps p. Preprocessing comes from, in order: the model's fixed
// input dims (channels, size), the overrides, the bitrun.* metadata; it is
// an error (wrapping ErrPreprocess) when a part stays unknown. The scores
// are the "logits" output when the model has one, else its first output.
// The caller keeps ownership of p.
func NewONNX(p *runtime.Predictor, o Overrides) (*ONNX, error) {
	info := p.Info()
	pre, err := ResolvePreprocess(info.Shape, info.Metadata, o)
	if err != nil {
		return nil, err
	}
	c := &ONNX{p: p, pre: pre, output: info.Outputs[0]}
	for _, name := range info.Outputs {
		if name == export.OutputLogits {
			c.output = name
		}
	}
	if s := info.Metadata[MetaLabels]; s != "" {
		if c.labels, err = ParseLabels(s); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// Preprocess implements Classifier.
func (c *ONNX) Preprocess() Preprocess { return c.pre }

// Labels implements Classifier.
func (c *ONNX) Labels() []string { return c.labels }

// Name implements Classifier.
func (c *ONNX) Name() string {
	i := c.p.Info()
	return fmt.Sprintf("onnx %s (%s)", i.Path, i.Provider)
}

// Logits implements Classifier.
func (c *ONNX) Logits(ctx context.Context, x []float32, n int) ([]float32, int, error) {
	s := int64(c.pre.Size)
	out, err := c.p.Run(ctx, x, []int64{int64(n), int64(c.pre.Channels), s, s})
	if err != nil {
		return nil, 0, fmt.Errorf("eval: %w", err)
	}
	o := out[c.output]
	if n <= 0 || len(o.Shape) < 2 || o.Shape[0] != int64(n) || len(o.Data)%n != 0 || len(o.Data) == 0 {
		return nil, 0, fmt.Errorf("eval: output %q has shape %v, want [%d, classes]", c.output, o.Shape, n)
	}
	return o.Data, len(o.Data) / n, nil
}

// Native is a Classifier over bitrun's own engine.
type Native struct {
	m   *model.Model
	pre Preprocess
	lab []string
}

// NewNative wraps m. BiT takes 3 channels; the size must be given
// (o.Size) since checkpoints do not record it; the norm defaults to BiT's
// [-1, 1] scaling. labels may be nil.
func NewNative(m *model.Model, o Overrides, labels []string) (*Native, error) {
	if o.Channels != 0 && o.Channels != 3 {
		return nil, fmt.Errorf("%w: BiT models take 3 channels, not %d", ErrPreprocess, o.Channels)
	}
	if o.Size <= 0 {
		return nil, fmt.Errorf("%w: give the resolution for the native engine (--resolution N)", ErrPreprocess)
	}
	if o.Size > 8192 {
		return nil, fmt.Errorf("%w: resolution %d out of range [1, 8192]", ErrPreprocess, o.Size)
	}
	pre := Preprocess{Size: o.Size, Channels: 3, Source: []string{"channels: BiT", "size: override"}}
	n := data.BiTNorm
	if o.Mean != nil || o.Std != nil {
		if o.Mean == nil || o.Std == nil {
			return nil, fmt.Errorf("%w: give both --mean and --std", ErrPreprocess)
		}
		var err error
		if n, err = norm(o.Mean, o.Std); err != nil {
			return nil, err
		}
		pre.Source = append(pre.Source, "norm: override")
	} else {
		pre.Source = append(pre.Source, "norm: BiT default")
	}
	pre.setNorm(n)
	return &Native{m: m, pre: pre, lab: labels}, nil
}

// Preprocess implements Classifier.
func (c *Native) Preprocess() Preprocess { return c.pre }

// Labels implements Classifier.
func (c *Native) Labels() []string { return c.lab }

// Name implements Classifier.
func (c *Native) Name() string { return "native " + c.m.Config.Name }

// Logits implements Classifier.
func (c *Native) Logits(ctx context.Context, x []float32, n int) ([]float32, int, error) {
	per := 3 * c.pre.Size * c.pre.Size
	if n <= 0 || len(x) != n*per {
		return nil, 0, fmt.Errorf("eval: native input has %d values, want %d×%d", len(x), n, per)
	}
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	logits, _ := c.m.Forward(nn.FromData(x, n, 3, c.pre.Size, c.pre.Size))
	return logits.Data, c.m.Config.Classes, nil
}
