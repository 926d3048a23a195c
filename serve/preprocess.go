package serve

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/bitrun/bitrun/api"
	"github.com/bitrun/bitrun/data"
	"github.com/bitrun/bitrun/export/meta"
	"github.com/bitrun/bitrun/runtime"
)

// Model metadata keys (ONNX metadata_props) that describe preprocessing and
// labels; written by bitrun's exporter, optional for other models.
const (
	MetaResolution = meta.Resolution // square input size in pixels, e.g. "128"
	MetaMean       = meta.Mean       // per-channel mean on [0,1], e.g. "[0.5,0.5,0.5]" or "0.5,0.5,0.5"
	MetaStd        = meta.Std        // per-channel std on [0,1]
	MetaLabels     = meta.Labels     // class names: JSON array or one per line
)

// Preprocessing is how an image becomes a model input row (the wire type
// of package api: resolution, channels, mean, std, layout).
type Preprocessing = api.Preprocessing

// prep is a model's Preprocessing with the normalisation data applies.
type prep struct {
	Preprocessing
	norm data.Norm
}

// MaxResolution is the largest input side served (predict and eval apply
// the same limit).
const MaxResolution = 8192

// maxBatchBytes bounds the input of one batch (MaxBatch, or a model's fixed
// batch size, times the input row): the warm-up allocates a whole batch
// before the server is ready.
const maxBatchBytes = 1 << 30

// modelPreprocessing works out the preprocessing of a model from its input
// shape and metadata: resolution from bitrun.resolution or the static input
// size, channels from the input shape (3 when dynamic), normalisation from
// bitrun.mean/bitrun.std (BiT's [-1,1] when absent).
func modelPreprocessing(info runtime.Info) (prep, error) {
	p := prep{Preprocessing: Preprocessing{Layout: "NCHW", Resize: "bilinear, square, aspect not kept", Channels: 3}, norm: data.BiTNorm}
	if len(info.Shape) != 4 {
		return p, fmt.Errorf("serve: model input %q has shape %v; want 4-D NCHW", info.Input, info.Shape)
	}
	if c := info.Shape[1]; c > 0 {
		if c != 1 && c != 3 {
			return p, fmt.Errorf("serve: model input %q has %d channels; want 1 or 3", info.Input, c)
		}
		p.Channels = int(c)
	}
	h, w := info.Shape[2], info.Shape[3]
	if h > 0 && w > 0 && h != w {
		return p, fmt.Errorf("serve: model input %q is %dx%d; only square inputs are supported", info.Input, h, w)
	}
	if s, ok := info.Metadata[MetaResolution]; ok {
		r, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || r <= 0 || r > MaxResolution {
			return p, fmt.Errorf("serve: metadata %s=%q is not a valid resolution", MetaResolution, s)
		}
		if h > 0 && int64(r) != h {
			return p, fmt.Errorf("serve: metadata %s=%d disagrees with the input shape %v", MetaResolution, r, info.Shape)
		}
		p.Resolution = r
	} else if h > 0 {
		if h > MaxResolution {
			return p, fmt.Errorf("serve: model input %q is %dx%d, over the %d-pixel side limit (as predict and eval)", info.Input, h, w, MaxResolution)
		}
		p.Resolution = int(h)
	} else {
		return p, fmt.Errorf("serve: model input %q has a dynamic size and no %s metadata", info.Input, MetaResolution)
	}
	for _, f := range []struct {
		key string
		dst *[3]float32
	}{{MetaMean, &p.norm.Mean}, {MetaStd, &p.norm.Std}} {
		if v, ok := info.Metadata[f.key]; ok {
			var err error
			if *f.dst, err = meta.ParseTriple(v); err != nil {
				return p, fmt.Errorf("serve: metadata %s: %w", f.key, err)
			}
		}
	}
	if err := p.setNorm(); err != nil {
		return p, fmt.Errorf("serve: metadata %s: %w", MetaStd, err)
	}
	return p, nil
}

// modelLabels reads bitrun.labels (a JSON array of strings or one label per
// line, meta.ParseLabels). Missing labels give nil; a count that disagrees
// with the class count is an error.
func modelLabels(md map[string]string, classes int) ([]string, error) {
	s, ok := md[MetaLabels]
	if !ok || strings.TrimSpace(s) == "" {
		return nil, nil
	}
	labels, err := meta.ParseLabels(s)
	if err != nil {
		return nil, fmt.Errorf("serve: metadata %s: %w", MetaLabels, err)
	}
	if classes > 0 && len(labels) != classes {
		return nil, fmt.Errorf("serve: metadata %s has %d labels for %d classes", MetaLabels, len(labels), classes)
	}
	return labels, nil
}

// override replaces the normalisation with mean and std (1 or 3 values
// each) when given.
func (p *prep) override(mean, std []float32) error {
	for _, f := range []struct {
		name string
		v    []float32
		dst  *[3]float32
	}{{"mean", mean, &p.norm.Mean}, {"std", std, &p.norm.Std}} {
		if len(f.v) == 0 {
			continue
		}
		var err error
		if *f.dst, err = meta.Triple(f.v); err != nil {
			return fmt.Errorf("serve: %s: %w", f.name, err)
		}
	}
	if err := p.setNorm(); err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}

// setNorm checks the normalisation's std and shows the norm in
// Preprocessing (channel 0's values for a gray model: EvalTensor reads
// channel 0 of the norm for gray output).
func (p *prep) setNorm() error {
	for c, s := range p.norm.Std {
		if !(s > 0) {
			return fmt.Errorf("non-positive std %g for channel %d", s, c)
		}
	}
	p.Mean = p.norm.Mean[:p.Channels:p.Channels]
	p.Std = p.norm.Std[:p.Channels:p.Channels]
	return nil
}
