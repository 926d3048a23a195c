package finetune

import (
	"bytes"
	"image"
	"image/color"
	"math/rand/v2"
	"testing"

	"github.com/bitrun/bitrun/internal/ort/onnxtest"
	"github.com/bitrun/bitrun/model"
	"github.com/bitrun/bitrun/nn"
	"github.com/bitrun/bitrun/runtime"
)

// synth is an in-memory dataset of 28×28 gray images: class c has a bright
// 9×9 block in quadrant c (of 4) on a noisy background, jittered by a few
// pixels, so a small network can learn it in a handful of steps.
type synth struct {
	imgs    []*image.Gray
	labels  []int
	classes []string
}

func newSynth(n int, seed uint64) *synth {
	rng := rand.New(rand.NewPCG(seed, 0x73796e7468))
	s := &synth{classes: []string{"nw", "ne", "sw", "se"}}
	for i := 0; i < n; i++ {
		c := i % 4
		img := image.NewGray(image.Rect(0, 0, 28, 28))
		for j := range img.Pix {
			img.Pix[j] = uint8(rng.IntN(60))
		}
		x0, y0 := 3+14*(c%2)+rng.IntN(3), 3+14*(c/2)+rng.IntN(3)
		for y := y0; y < y0+9; y++ {
			for x := x0; x < x0+9; x++ {
				img.SetGray(x, y, color.Gray{Y: uint8(180 + rng.IntN(70))})
			}
		}
		s.imgs, s.labels = append(s.imgs, img), append(s.labels, c)
	}
	return s
}

func (s *synth) Len() int                         { return len(s.imgs) }
func (s *synth) Classes() []string                { return s.classes }
func (s *synth) Label(i int) int                  { return s.labels[i] }
func (s *synth) Image(i int) (image.Image, error) { return s.imgs[i], nil }

// tinySource is a pretrained-looking tiny BiT: random trunk weights (model.Init)
// with a 10-class head that Run replaces.
func tinySource(t testing.TB) (model.Config, model.Params) {
	t.Helper()
	cfg, err := model.Arch("tiny", 10)
	if err != nil {
		t.Fatal(err)
	}
	p := model.Init(cfg, 7)
	// A non-zero source head, so a test sees that Run zeroes the new one.
	for i := range p[model.HeadKernel].Data {
		p[model.HeadKernel].Data[i] = 0.01 * float32(i%7)
	}
	return cfg, p
}

// testRule is a short recipe at 16×16 for tests.
func testRule() HyperRule {
	return HyperRule{Examples: 64, ImageArea: 28 * 28, Resize: 20, Crop: 16, Steps: 6, Warmup: 2,
		Decays: []int{3, 4, 5}, BaseLR: 0.05, BatchSize: 8, Momentum: 0.9}
}

// requireORT skips (or fails under BITRUN_REQUIRE_ORT=1) when ONNX Runtime
// cannot be loaded.
func requireORT(t testing.TB) {
	t.Helper()
	_, err := runtime.Version(runtime.Options{})
	onnxtest.Require(t, err)
}

func maxAbsDiff(a, b []float32) float64 {
	var m float64
	for i := range a {
		d := float64(a[i] - b[i])
		if d < 0 {
			d = -d
		}
		m = max(m, d)
	}
	return m
}

func equalParams(t *testing.T, a, b model.Params) {
	t.Helper()
	if len(a) != len(b) {
		t.Fatalf("%d params vs %d", len(a), len(b))
	}
	for name, x := range a {
		y := b[name]
		if y == nil || !nn.SameShape(x.Shape, y.Shape) {
			t.Fatalf("%s: shape %v vs %v", name, x.Shape, y)
		}
		for i := range x.Data {
			if x.Data[i] != y.Data[i] {
				t.Fatalf("%s[%d]: %g vs %g", name, i, x.Data[i], y.Data[i])
			}
		}
	}
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }
