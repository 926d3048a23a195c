package data

import (
	"fmt"
	"image"
	"image/color"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// refTensor is an independent float64 reference of EvalTensor/TrainTensor:
// it reads pixels through image.Image.At, composites over white and
// resizes like tf.image.resize (bilinear, half_pixel_centers=True): source
// coordinate in = (out+0.5)*inSize/outSize - 0.5, lower = max(floor(in), 0),
// upper = min(ceil(in), inSize-1), weight in - floor(in).
func refTensor(img image.Image, pre, crop, ox, oy int, flip bool, channels int, norm Norm) []float64 {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	px := func(x, y int) [3]float64 {
		r, g, bl, a := img.At(b.Min.X+x, b.Min.Y+y).RGBA()
		bg := float64(0xffff - a)
		return [3]float64{(float64(r) + bg) / 257, (float64(g) + bg) / 257, (float64(bl) + bg) / 257}
	}
	taps := func(o, in int) (int, int, float64) {
		s := (float64(o)+0.5)*float64(in)/float64(pre) - 0.5
		lo, hi := int(math.Floor(s)), int(math.Ceil(s))
		f := s - math.Floor(s)
		if lo < 0 {
			lo = 0
		}
		if hi > in-1 {
			hi = in - 1
		}
		if lo > in-1 {
			lo = in - 1
		}
		return lo, hi, f
	}
	out := make([]float64, channels*crop*crop)
	_, isGray := img.(*image.Gray)
	for j := 0; j < crop; j++ {
		for i := 0; i < crop; i++ {
			gx := ox + i
			if flip {
				gx = ox + crop - 1 - i
			}
			x0, x1, fx := taps(gx, w)
			y0, y1, fy := taps(oy+j, h)
			var v [3]float64
			for c := 0; c < 3; c++ {
				top := px(x0, y0)[c]*(1-fx) + px(x1, y0)[c]*fx
				bot := px(x0, y1)[c]*(1-fx) + px(x1, y1)[c]*fx
				v[c] = top*(1-fy) + bot*fy
			}
			if channels == 1 {
				l := 0.299*v[0] + 0.587*v[1] + 0.114*v[2]
				if isGray {
					l = v[0]
				}
				out[j*crop+i] = (l/255 - float64(norm.Mean[0])) / float64(norm.Std[0])
				continue
			}
			for c := 0; c < 3; c++ {
				out[(c*crop+j)*crop+i] = (v[c]/255 - float64(norm.Mean[c])) / float64(norm.Std[c])
			}
		}
	}
	return out
}

// testImages returns one image of each fast-path type plus a generic one,
// with random content (some transparency where the type allows it).
func testImages(w, h int, seed uint64) map[string]image.Image {
	r := rand.New(rand.NewPCG(seed, 1))
	rect := image.Rect(0, 0, w, h)
	gray := image.NewGray(rect)
	rgba := image.NewRGBA(rect)
	nrgba := image.NewNRGBA(rect)
	ycc := image.NewYCbCr(rect, image.YCbCrSubsampleRatio420)
	cmyk := image.NewCMYK(rect)
	for i := range gray.Pix {
		gray.Pix[i] = uint8(r.IntN(256))
	}
	for i := 0; i < w*h; i++ {
		a := uint8(255)
		if i%3 == 0 {
			a = uint8(r.IntN(256))
		}
		for c := 0; c < 3; c++ {
			rgba.Pix[4*i+c] = uint8(r.IntN(int(a) + 1)) // premultiplied: c <= a
			nrgba.Pix[4*i+c] = uint8(r.IntN(256))
		}
		rgba.Pix[4*i+3], nrgba.Pix[4*i+3] = a, a
	}
	for i := range ycc.Y {
		ycc.Y[i] = uint8(r.IntN(256))
	}
	for i := range ycc.Cb {
		ycc.Cb[i], ycc.Cr[i] = uint8(r.IntN(256)), uint8(r.IntN(256))
	}
	for i := range cmyk.Pix {
		cmyk.Pix[i] = uint8(r.IntN(256))
	}
	// A sub-image with a non-zero origin exercises the offset arithmetic.
	big := image.NewRGBA(image.Rect(-3, -2, w+5, h+4))
	for i := range big.Pix {
		big.Pix[i] = uint8(r.IntN(256))
	}
	for i := 3; i < len(big.Pix); i += 4 {
		big.Pix[i] = 255
	}
	ycc422 := image.NewYCbCr(image.Rect(-5, -3, w+4, h+6), image.YCbCrSubsampleRatio422)
	for i := range ycc422.Y {
		ycc422.Y[i] = uint8(r.IntN(256))
	}
	for i := range ycc422.Cb {
		ycc422.Cb[i], ycc422.Cr[i] = uint8(r.IntN(256)), uint8(r.IntN(256))
	}
	return map[string]image.Image{
		"ycbcr422sub": ycc422.SubImage(image.Rect(-3, -1, w-3, h-1)),
		"gray":        gray, "rgba": rgba, "nrgba": nrgba, "ycbcr420": ycc, "cmyk": cmyk,
		"subimage": big.SubImage(image.Rect(1, 1, 1+w, 1+h)),
	}
}

func maxDiff(got []float32, want []float64) (float64, int) {
	worst, at := 0.0, -1
	for i := range got {
		if d := math.Abs(float64(got[i]) - want[i]); d > worst || math.IsNaN(d) {
			worst, at = d, i
		}
	}
	return worst, at
}

func TestEvalTensorMatchesReference(t *testing.T) {
	imagenet := Norm{Mean: [3]float32{0.485, 0.456, 0.406}, Std: [3]float32{0.229, 0.224, 0.225}}
	for _, sz := range []struct{ w, h, out int }{{7, 13, 5}, {20, 9, 31}, {28, 28, 32}, {64, 48, 16}, {1, 1, 3}, {5, 5, 5}} {
		for name, img := range testImages(sz.w, sz.h, uint64(sz.w*100+sz.h)) {
			for _, ch := range []int{1, 3} {
				for _, norm := range []Norm{BiTNorm, imagenet} {
					dst := make([]float32, ch*sz.out*sz.out)
					EvalTensor(img, sz.out, ch, norm, dst)
					want := refTensor(img, sz.out, sz.out, 0, 0, false, ch, norm)
					// YCbCr: the reference's At() keeps 16-bit colour precision
					// where the fast path uses the 8-bit JPEG conversion.
					tol := 1e-4 / float64(norm.Std[0])
					if strings.HasPrefix(name, "ycbcr") || name == "cmyk" {
						tol = 1.5 / 255 / float64(norm.Std[2])
					}
					if d, at := maxDiff(dst, want); d > tol {
						t.Errorf("%s %dx%d -> %d, %d channels, norm %v: max diff %g at %d (got %v want %v)",
							name, sz.w, sz.h, sz.out, ch, norm.Std, d, at, dst[at], want[at])
					}
				}
			}
		}
	}
}

func TestTrainTensorMatchesReference(t *testing.T) {
	for name, img := range testImages(23, 17, 7) {
		for seed := uint64(0); seed < 6; seed++ {
			const pre, crop = 20, 12
			dst := make([]float32, 3*crop*crop)
			TrainTensor(img, pre, crop, 3, BiTNorm, rand.New(rand.NewPCG(seed, 2)), dst)
			// The documented draw order: x offset, y offset, flip.
			r := rand.New(rand.NewPCG(seed, 2))
			ox, oy, flip := r.IntN(pre-crop+1), r.IntN(pre-crop+1), r.IntN(2) == 1
			want := refTensor(img, pre, crop, ox, oy, flip, 3, BiTNorm)
			tol := 1e-4
			if strings.HasPrefix(name, "ycbcr") || name == "cmyk" {
				tol = 3.0 / 255
			}
			if d, at := maxDiff(dst, want); d > tol {
				t.Errorf("%s seed %d (crop %d,%d flip %v): max diff %g at %d", name, seed, ox, oy, flip, d, at)
			}
		}
	}
}

func TestTrainTensorRandomness(t *testing.T) {
	img := testImages(40, 30, 3)["rgba"]
	const pre, crop = 20, 16
	run := func(seed uint64) []float32 {
		dst := make([]float32, 3*crop*crop)
		TrainTensor(img, pre, crop, 3, BiTNorm, rand.New(rand.NewPCG(seed, 9)), dst)
		return dst
	}
	a, b := run(1), run(1)
	for i := range a {
		if a[i] != b[i] {
			t.Fatal("same seed gave different tensors")
		}
	}
	distinct := map[string]bool{}
	for s := uint64(0); s < 40; s++ {
		distinct[fmt.Sprint(run(s)[:8])] = true
	}
	if len(distinct) < 10 {
		t.Errorf("40 seeds gave only %d distinct crops", len(distinct))
	}
}

func TestChannelConversion(t *testing.T) {
	g := image.NewGray(image.Rect(0, 0, 6, 6))
	for i := range g.Pix {
		g.Pix[i] = uint8(i * 7)
	}
	dst := make([]float32, 3*4*4)
	EvalTensor(g, 4, 3, BiTNorm, dst)
	for i := 0; i < 16; i++ {
		if dst[i] != dst[16+i] || dst[i] != dst[32+i] {
			t.Fatalf("gray not replicated at %d: %v %v %v", i, dst[i], dst[16+i], dst[32+i])
		}
	}
	// Pure colours to luma.
	for _, tc := range []struct {
		c    color.RGBA
		luma float64
	}{{color.RGBA{255, 0, 0, 255}, 0.299 * 255}, {color.RGBA{0, 255, 0, 255}, 0.587 * 255}, {color.RGBA{0, 0, 255, 255}, 0.114 * 255}, {color.RGBA{0, 0, 0, 0}, 255}} {
		m := image.NewRGBA(image.Rect(0, 0, 3, 3))
		for i := 0; i < 9; i++ {
			m.SetRGBA(i%3, i/3, tc.c)
		}
		one := make([]float32, 2*2)
		EvalTensor(m, 2, 1, BiTNorm, one)
		if want := tc.luma/127.5 - 1; math.Abs(float64(one[0])-want) > 1e-5 {
			t.Errorf("%v: luma %v, want %v", tc.c, one[0], want)
		}
	}
}

func TestNormEndpoints(t *testing.T) {
	for _, v := range []uint8{0, 255, 51} {
		g := image.NewGray(image.Rect(0, 0, 3, 3))
		for i := range g.Pix {
			g.Pix[i] = v
		}
		dst := make([]float32, 3*5*5)
		EvalTensor(g, 5, 3, BiTNorm, dst)
		want := float64(v)/127.5 - 1
		for _, x := range dst {
			if math.Abs(float64(x)-want) > 1e-6 {
				t.Fatalf("pixel %d -> %v, want %v", v, x, want)
			}
		}
	}
	// Empty image: normalised black, no panic.
	dst := make([]float32, 3*2*2)
	EvalTensor(image.NewRGBA(image.Rectangle{}), 2, 3, BiTNorm, dst)
	if dst[0] != -1 {
		t.Errorf("empty image -> %v, want -1", dst[0])
	}
}

func TestEvalTensorDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop items, so allocations are expected")
	}
	imgs := testImages(300, 200, 5)
	dst := make([]float32, 3*64*64)
	for name, img := range imgs {
		if name == "cmyk" || name == "subimage" {
			continue // generic At() path allocates per pixel
		}
		allocs := testing.AllocsPerRun(20, func() { EvalTensor(img, 64, 3, BiTNorm, dst) })
		if allocs >= 1 {
			t.Errorf("%s: %v allocations per call", name, allocs)
		}
	}
}

func TestBadArgsPanic(t *testing.T) {
	img := image.NewGray(image.Rect(0, 0, 4, 4))
	for name, f := range map[string]func(){
		"channels 2": func() { EvalTensor(img, 4, 2, BiTNorm, make([]float32, 32)) },
		"short dst":  func() { EvalTensor(img, 4, 3, BiTNorm, make([]float32, 47)) },
		"crop > pre": func() { TrainTensor(img, 4, 5, 1, BiTNorm, rand.New(rand.NewPCG(1, 1)), make([]float32, 25)) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f()
		}()
	}
}

func TestTrainPreSize(t *testing.T) {
	for crop, want := range map[int]int{128: 160, 384: 448, 480: 512, 224: 256, 32: 40} {
		if got := TrainPreSize(crop); got != want {
			t.Errorf("TrainPreSize(%d) = %d, want %d", crop, got, want)
		}
	}
}

func benchmarkEval(b *testing.B, kind string, w, h, size int) {
	img := testImages(w, h, 1)[kind]
	dst := make([]float32, 3*size*size)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		EvalTensor(img, size, 3, BiTNorm, dst)
	}
}

func BenchmarkEvalTensor(b *testing.B) {
	for _, c := range []struct {
		kind       string
		w, h, size int
	}{
		{"gray", 28, 28, 128},
		{"rgba", 500, 375, 224},
		{"ycbcr420", 500, 375, 224},
		{"ycbcr420", 4000, 3000, 480},
		{"nrgba", 500, 375, 224},
	} {
		b.Run(fmt.Sprintf("%s_%dx%d_to_%d", c.kind, c.w, c.h, c.size), func(b *testing.B) { benchmarkEval(b, c.kind, c.w, c.h, c.size) })
	}
}
