package finetune

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/bitrun/bitrun/export"
	"github.com/bitrun/bitrun/export/onnxpb"
	"github.com/bitrun/bitrun/model"
	"github.com/bitrun/bitrun/nn"
	"github.com/bitrun/bitrun/runtime"
)

// Trunk engines accepted in Options.Engine.
const (
	EngineAuto   = "auto"   // ONNX Runtime when its library loads, else native
	EngineORT    = "ort"    // ONNX Runtime; an error when it is unavailable
	EngineNative = "native" // bitrun's own forward
)

// trunk computes the tensor that enters the pre-head GroupNorm, [N,C,h,w],
// for a batch of preprocessed images [N,3,R,R].
type trunk interface {
	// Run returns the activations of n images of side res (row-major
	// [n,C,h,w]) and the per-image shape [C,h,w]. The result is valid until
	// the next Run.
	Run(ctx context.Context, x []float32, n, res int) ([]float32, [3]int, error)
	Name() string
	Close() error
}

// newTrunk returns the trunk engine for cfg and params: ONNX Runtime running
// an exported trunk graph (written to a temporary file in dir) or the native
// engine. With EngineAuto an unavailable ONNX Runtime falls back to the native
// engine and logs why.
func newTrunk(cfg model.Config, params model.Params, engine, dir string, ro runtime.Options, log *slog.Logger) (trunk, error) {
	switch engine {
	case EngineNative:
		return newNativeTrunk(cfg, params)
	case EngineORT, EngineAuto, "":
	default:
		return nil, fmt.Errorf("%w: unknown trunk engine %q (want auto, ort or native)", ErrOptions, engine)
	}
	t, err := newORTTrunk(cfg, params, dir, ro)
	if err == nil {
		return t, nil
	}
	if engine == EngineORT || !errors.Is(err, runtime.ErrUnavailable) {
		return nil, err
	}
	log.Warn("onnx runtime unavailable: computing trunk activations with the native engine (slower)", "err", err)
	return newNativeTrunk(cfg, params)
}

// nativeTrunk runs the trunk with bitrun's native engine (model.Model.Trunk).
type nativeTrunk struct {
	m *model.Model
}

func newNativeTrunk(cfg model.Config, params model.Params) (*nativeTrunk, error) {
	m, err := model.New(cfg, params)
	if err != nil {
		return nil, fmt.Errorf("finetune: %w", err)
	}
	return &nativeTrunk{m: m}, nil
}

func (t *nativeTrunk) Name() string { return EngineNative }
func (t *nativeTrunk) Close() error { return nil }

func (t *nativeTrunk) Run(ctx context.Context, x []float32, n, res int) ([]float32, [3]int, error) {
	if err := ctx.Err(); err != nil {
		return nil, [3]int{}, err
	}
	if n <= 0 || len(x) != n*3*res*res {
		return nil, [3]int{}, fmt.Errorf("%w: trunk input holds %d values, want %d images of 3x%dx%d", ErrOptions, len(x), n, res, res)
	}
	h := t.m.Trunk(nn.FromData(x, n, 3, res, res))
	return h.Data, [3]int{h.Shape[1], h.Shape[2], h.Shape[3]}, nil
}

// ortTrunk runs an exported graph cut at the pre-head GroupNorm's input.
type ortTrunk struct {
	p      *runtime.Predictor
	output string
}

// trunkOutput is the name of the extra output of the trunk graph.
const trunkOutput = "trunk"

func newORTTrunk(cfg model.Config, params model.Params, dir string, ro runtime.Options) (t *ortTrunk, err error) {
	m, err := export.Build(cfg, params, export.Options{})
	if err != nil {
		return nil, fmt.Errorf("finetune: trunk graph: %w", err)
	}
	g := m.Graph
	// The pre-head GroupNorm's nodes are named "resnet/pre_head/...": the
	// first of them reads the trunk output.
	var src string
	for _, nd := range g.Nodes {
		if strings.HasPrefix(nd.Name, "resnet/pre_head/") && len(nd.Inputs) > 0 {
			src = nd.Inputs[0]
			break
		}
	}
	if src == "" {
		return nil, fmt.Errorf("finetune: trunk graph: no pre-head GroupNorm node in the exported graph")
	}
	// Keep only the nodes the trunk output needs; rename it.
	need := map[string]bool{src: true}
	keep := make([]bool, len(g.Nodes))
	for i := len(g.Nodes) - 1; i >= 0; i-- {
		nd := g.Nodes[i]
		for _, o := range nd.Outputs {
			if need[o] {
				keep[i] = true
			}
		}
		if keep[i] {
			for _, in := range nd.Inputs {
				need[in] = true
			}
		}
	}
	kept := g.Nodes[:0:0]
	for i, nd := range g.Nodes {
		if keep[i] {
			kept = append(kept, nd)
		}
	}
	g.Nodes = kept
	inits := g.Initializers[:0:0]
	for _, in := range g.Initializers {
		if need[in.Name] {
			inits = append(inits, in)
		}
	}
	g.Initializers = inits
	g.Nodes = append(g.Nodes, &onnxpb.Node{Name: trunkOutput, OpType: "Identity", Inputs: []string{src}, Outputs: []string{trunkOutput}})
	g.Outputs = []*onnxpb.ValueInfo{{Name: trunkOutput, ElemType: onnxpb.Float, HasShape: true,
		Shape: []onnxpb.Dim{{Param: "N"}, {Value: int64(cfg.FeatureDim())}, {Param: "h"}, {Param: "w"}}}}
	g.ValueInfo = nil

	f, err := os.CreateTemp(dir, ".trunk-*.onnx")
	if err != nil {
		return nil, fmt.Errorf("finetune: trunk graph: %w", err)
	}
	path := f.Name()
	defer os.Remove(path) // ONNX Runtime has read it once Open returns
	if _, err := m.WriteTo(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("finetune: trunk graph: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("finetune: trunk graph: %w", err)
	}
	p, err := runtime.Open(filepath.Clean(path), ro)
	if err != nil {
		return nil, fmt.Errorf("finetune: trunk graph: %w", err)
	}
	return &ortTrunk{p: p, output: trunkOutput}, nil
}

func (t *ortTrunk) Name() string { return "onnxruntime" }
func (t *ortTrunk) Close() error { return t.p.Close() }

func (t *ortTrunk) Run(ctx context.Context, x []float32, n, res int) ([]float32, [3]int, error) {
	out, err := t.p.Run(ctx, x, []int64{int64(n), 3, int64(res), int64(res)})
	if err != nil {
		return nil, [3]int{}, fmt.Errorf("finetune: trunk: %w", err)
	}
	o, ok := out[t.output]
	if !ok || len(o.Shape) != 4 || o.Shape[0] != int64(n) {
		return nil, [3]int{}, fmt.Errorf("finetune: trunk: output %q missing or mis-shaped", t.output)
	}
	return o.Data, [3]int{int(o.Shape[1]), int(o.Shape[2]), int(o.Shape[3])}, nil
}
