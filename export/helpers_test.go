package export

import (
	"context"
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/bitrun/bitrun/export/onnxpb"
	"github.com/bitrun/bitrun/internal/ort/onnxtest"
	"github.com/bitrun/bitrun/internal/testmodel"
	"github.com/bitrun/bitrun/model"
	"github.com/bitrun/bitrun/nn"
	"github.com/bitrun/bitrun/runtime"
)

// requireORT skips the test when ONNX Runtime cannot be loaded, or fails it
// when BITRUN_REQUIRE_ORT=1 (make test sets it).
func requireORT(t testing.TB) {
	t.Helper()
	_, err := runtime.Version(runtime.Options{})
	onnxtest.Require(t, err)
}

// randomParams draws kernels with a per-output-channel offset (so WS has
// something to remove), GN affine around (1, 0), and a non-zero head
// (model.Init zeroes the head, which would make logit parity vacuous).
func randomParams(cfg model.Config, seed uint64) model.Params {
	return testmodel.Random(cfg, seed, testmodel.Spread{
		Conv: 0.1, ConvOffset: 0.05, Gamma: 0.2, Beta: 0.2, Head: 2, HeadBias: 0.3,
	})
}

// randomImages returns a batch [n,3,size,size] of values in [-1, 1].
func randomImages(n, size int, seed uint64) *nn.Tensor {
	rng := rand.New(rand.NewPCG(seed, 7))
	x := nn.New(n, 3, size, size)
	for i := range x.Data {
		x.Data[i] = float32(2*rng.Float64() - 1)
	}
	return x
}

// build is Build, failing t on an error.
func build(t testing.TB, cfg model.Config, params model.Params, opts Options) *onnxpb.Model {
	t.Helper()
	m, err := Build(cfg, params, opts)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// exportFile exports to a temporary folder and returns the model path.
func exportFile(t testing.TB, cfg model.Config, params model.Params, opts Options) (string, *Result) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "model.onnx")
	res, err := Export(context.Background(), path, cfg, params, opts)
	if err != nil {
		t.Fatalf("Export: %v", err)
	}
	return path, res
}

// openORT opens path with ONNX Runtime (closed at cleanup).
func openORT(t testing.TB, path string) *runtime.Predictor {
	t.Helper()
	requireORT(t)
	p, err := runtime.Open(path, runtime.Options{})
	if err != nil {
		t.Fatalf("runtime.Open(%s): %v", path, err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// runORT runs x through p.
func runORT(t testing.TB, p *runtime.Predictor, x *nn.Tensor) map[string]runtime.Output {
	t.Helper()
	shape := make([]int64, len(x.Shape))
	for i, d := range x.Shape {
		shape[i] = int64(d)
	}
	out, err := p.Run(context.Background(), x.Data, shape)
	if err != nil {
		t.Fatalf("Run %v: %v", x.Shape, err)
	}
	return out
}

// diff is the largest absolute difference and the range (max - min) of want.
type diff struct {
	maxAbs, span float64
}

func compare(got, want []float32) diff {
	d := diff{}
	lo, hi := math.Inf(1), math.Inf(-1)
	for i := range want {
		w := float64(want[i])
		lo, hi = math.Min(lo, w), math.Max(hi, w)
		if a := math.Abs(float64(got[i]) - w); a > d.maxAbs || math.IsNaN(a) {
			d.maxAbs = a
			if math.IsNaN(a) {
				d.maxAbs = math.Inf(1)
			}
		}
	}
	d.span = hi - lo
	return d
}

// Parity tolerances of the acceptance: 1e-3 absolute and 1e-4 of the range.
const (
	tolAbs = 1e-3
	tolRel = 1e-4
)

// checkParity fails unless got matches want within tolAbs absolute and
// tolRel of want's range; it returns the differences for reporting.
func checkParity(t testing.TB, what string, got runtime.Output, want *nn.Tensor) diff {
	t.Helper()
	if len(got.Shape) != len(want.Shape) {
		t.Fatalf("%s: ORT shape %v, native %v", what, got.Shape, want.Shape)
	}
	for i := range got.Shape {
		if got.Shape[i] != int64(want.Shape[i]) {
			t.Fatalf("%s: ORT shape %v, native %v", what, got.Shape, want.Shape)
		}
	}
	d := compare(got.Data, want.Data)
	if d.span == 0 {
		t.Fatalf("%s: native output is constant; the parity check would be vacuous", what)
	}
	if d.maxAbs > tolAbs || d.maxAbs > tolRel*d.span {
		t.Errorf("%s: max |ORT - native| = %.3g (range %.3g, relative %.3g); want <= %g and <= %g of the range",
			what, d.maxAbs, d.span, d.maxAbs/d.span, tolAbs, tolRel)
	}
	return d
}
