package model

import (
	"errors"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bitrun/bitrun/nn"
)

// TestLoadRefusesNonFinite (issue 12, item 6): an .npz holding NaN or ±Inf
// is refused on load with ErrNonFinite (and ErrFormat), naming the key.
func TestLoadRefusesNonFinite(t *testing.T) {
	for _, bad := range []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))} {
		p := filepath.Join(t.TempDir(), "w.npz")
		params := Params{
			"ok":                    &nn.Tensor{Shape: []int{2}, Data: []float32{1, 2}},
			"resnet/root_block/std": &nn.Tensor{Shape: []int{3}, Data: []float32{0.5, bad, 3}},
		}
		if err := SaveNPZ(p, params); err != nil {
			t.Fatal(err)
		}
		_, err := LoadNPZ(p)
		if !errors.Is(err, ErrNonFinite) || !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), `"resnet/root_block/std"`) ||
			!strings.Contains(err.Error(), "index 1") {
			t.Errorf("%v: err = %v, want ErrNonFinite naming the key and index", bad, err)
		}
	}
	// Finite extremes load.
	p := filepath.Join(t.TempDir(), "w.npz")
	if err := SaveNPZ(p, Params{"x": &nn.Tensor{Shape: []int{2}, Data: []float32{math.MaxFloat32, -math.MaxFloat32}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadNPZ(p); err != nil {
		t.Fatal(err)
	}
}
