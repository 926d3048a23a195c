package model

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/bitrun/bitrun/nn"
)

// goldenTol is the largest absolute difference accepted between Model.Forward
// (float32) and the float64 NumPy reference of testdata/golden.py.
const goldenTol = 1e-4

func readNPYFile(t *testing.T, path string) *nn.Tensor {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	x, err := ReadNPY(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return x
}

// TestGolden compares the native forward pass with the independent NumPy
// implementation in testdata/golden.py on the "tiny" network with random
// weights (non-trivial GN affine, non-zero head) at two input sizes.
func TestGolden(t *testing.T) {
	m, err := Load(filepath.Join("testdata", "tiny.npz"))
	if err != nil {
		t.Fatal(err)
	}
	if m.Config.Name != "tiny" || m.Config.Classes != 10 || m.Config.Groups != 8 {
		t.Fatalf("inferred %+v, want tiny with 10 classes and 8 groups", m.Config)
	}
	prev := nn.Backend()
	defer nn.SetBackend(prev)
	for _, g := range nn.Backends() {
		for _, size := range []string{"32", "40"} {
			t.Run(strings.Fields(g.Name())[0]+"/"+size, func(t *testing.T) {
				nn.SetBackend(g)
				x := readNPYFile(t, filepath.Join("testdata", "x"+size+".npy"))
				wantLogits := readNPYFile(t, filepath.Join("testdata", "logits"+size+".npy"))
				wantFeatures := readNPYFile(t, filepath.Join("testdata", "features"+size+".npy"))
				logits, features := m.Forward(x)
				compare(t, "logits", logits, wantLogits, goldenTol)
				compare(t, "features", features, wantFeatures, goldenTol)
				// The trunk is the forward up to the pre-head GroupNorm.
				h := m.Trunk(x)
				trunkFeatures := nn.GlobalAvgPool(nn.GroupNormReLU(h, m.Config.Groups, m.Params[HeadGamma].Data, m.Params[HeadBeta].Data))
				compare(t, "features from Trunk", trunkFeatures, wantFeatures, goldenTol)
			})
		}
	}
}

func compare(t *testing.T, what string, got, want *nn.Tensor, tol float64) {
	t.Helper()
	if !nn.SameShape(got.Shape, want.Shape) {
		t.Fatalf("%s: shape %v, want %v", what, got.Shape, want.Shape)
	}
	worst, at := 0.0, 0
	for i := range got.Data {
		d := math.Abs(float64(got.Data[i]) - float64(want.Data[i]))
		if d > worst || math.IsNaN(d) {
			worst, at = d, i
		}
	}
	if worst > tol || math.IsNaN(worst) {
		t.Errorf("%s: max |diff| %.3g at %d (got %v, want %v), tolerance %g", what, worst, at, got.Data[at], want.Data[at], tol)
	}
	t.Logf("%s: max |diff| %.3g", what, worst)
}

// TestForwardConcurrent: a Model serves concurrent Forward calls (kernels
// packed once, workspaces from the shared free list) with the values of a
// lone call.
func TestForwardConcurrent(t *testing.T) {
	m, err := Load(filepath.Join("testdata", "tiny.npz"))
	if err != nil {
		t.Fatal(err)
	}
	x := readNPYFile(t, filepath.Join("testdata", "x32.npy"))
	want, _ := m.Forward(x)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 5 {
				got, _ := m.Forward(x)
				for i := range want.Data {
					if got.Data[i] != want.Data[i] {
						t.Errorf("logit %d: %v concurrently, %v alone", i, got.Data[i], want.Data[i])
						return
					}
				}
			}
		})
	}
	wg.Wait()
}
