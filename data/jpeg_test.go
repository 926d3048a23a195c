package data

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"math"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"testing"

	"github.com/bitrun/bitrun/internal/testenv"
)

// useJPEG selects a JPEG decoder for one test and restores the default
// after it. libjpeg-turbo missing skips the test, or fails it when
// BITRUN_REQUIRE_TURBOJPEG=1 (make test sets it; make setup installs the
// library).
func useJPEG(t testing.TB, name string) {
	t.Helper()
	t.Cleanup(func() { _ = SelectJPEG(os.Getenv(EnvJPEG)) })
	testenv.Require(t, "BITRUN_REQUIRE_TURBOJPEG", "libjpeg-turbo", SelectJPEG(name))
}

// photoLike is a w×h image with smooth colour gradients, a few hard edges and
// pixel noise: what camera JPEGs look like to a decoder.
func photoLike(w, h int) *image.RGBA {
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	seed := uint32(7)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			seed = seed*1664525 + 1013904223
			n := int(seed>>28) - 8
			r := 128 + 100*math.Sin(float64(x)/9) + float64(n)
			g := 255 * float64(y) / float64(h)
			b := 60.0
			if (x/17+y/13)%3 == 0 {
				b = 200
			}
			m.SetRGBA(x, y, color.RGBA{uint8(min(max(r, 0), 255)), uint8(g), uint8(b), 255})
		}
	}
	return m
}

// TestJPEGDecodersAgree decodes the same photo-like JPEGs (4:2:0 colour at
// two qualities, and gray) with image/jpeg and libjpeg-turbo. The two differ
// (IDCT rounding; along colour edges, chroma upsampling: image/jpeg
// replicates subsampled chroma, libjpeg-turbo interpolates it), so the test
// bounds each decoder's mean error against the source image: libjpeg-turbo
// must be at least as faithful as image/jpeg (within a quarter level).
func TestJPEGDecodersAgree(t *testing.T) {
	src := photoLike(97, 61)
	gray := image.NewGray(src.Rect)
	for i := range gray.Pix {
		gray.Pix[i] = src.Pix[4*i+1]
	}
	for _, tc := range []struct {
		name string
		m    image.Image
		q    int
	}{{"colour q95", src, 95}, {"colour q60", src, 60}, {"gray q90", gray, 90}} {
		t.Run(tc.name, func(t *testing.T) {
			enc := encJPEG(t, tc.m, tc.q)
			meanErr := func(dec string) (float64, image.Image) {
				useJPEG(t, dec)
				m, err := DecodeBytes(enc, 0)
				if err != nil {
					t.Fatal(err)
				}
				if m.Bounds() != src.Rect {
					t.Fatalf("%s: bounds %v", dec, m.Bounds())
				}
				sum := 0
				for y := 0; y < 61; y++ {
					for x := 0; x < 97; x++ {
						a, b := rgbAt(m, x, y), rgbAt(tc.m, x, y)
						for c := 0; c < 3; c++ {
							sum += absi(a[c] - b[c])
						}
					}
				}
				return float64(sum) / (3 * 97 * 61), m
			}
			goErr, _ := meanErr(JPEGGo)
			turboErr, m := meanErr(JPEGTurbo)
			t.Logf("mean |error| against the source: image/jpeg %.3f, libjpeg-turbo %.3f levels", goErr, turboErr)
			if _, isGray := m.(*image.Gray); isGray != (tc.m == image.Image(gray)) {
				t.Fatalf("libjpeg-turbo gave %T", m)
			}
			if turboErr > goErr+0.25 || turboErr > 8 {
				t.Errorf("libjpeg-turbo mean error %.3f levels, image/jpeg %.3f", turboErr, goErr)
			}
		})
	}
}

// TestJPEGBadStreams: truncated and corrupted streams are errors wrapping
// ErrBadImage with either decoder (libjpeg-turbo would decode a truncated
// scan as grey with a warning; bitrun refuses it).
func TestJPEGBadStreams(t *testing.T) {
	enc := encJPEG(t, photoLike(64, 48), 90)
	flipped := bytes.Clone(enc)
	// Overwrite the middle of the entropy-coded data with a marker that does
	// not belong there.
	mid := len(flipped) * 2 / 3
	flipped[mid], flipped[mid+1] = 0xFF, 0xD9
	flipped = flipped[:mid+2]
	for _, dec := range []string{JPEGGo, JPEGTurbo} {
		t.Run(dec, func(t *testing.T) {
			useJPEG(t, dec)
			for name, b := range map[string][]byte{
				"truncated in scan":   enc[:len(enc)*2/3],
				"truncated in header": enc[:100],
				"early EOI":           flipped,
			} {
				_, err := DecodeBytes(b, 0)
				if !errors.Is(err, ErrBadImage) {
					t.Errorf("%s: error %v does not wrap ErrBadImage", name, err)
				}
			}
		})
	}
}

// TestJPEGTurboPixelCap: the cap is checked from the header before either
// decoder allocates.
func TestJPEGTurboPixelCap(t *testing.T) {
	useJPEG(t, JPEGTurbo)
	enc := encJPEG(t, photoLike(64, 48), 90)
	if _, err := DecodeBytes(enc, 64*48-1); !errors.Is(err, ErrBadImage) || !strings.Contains(err.Error(), "over the limit") {
		t.Fatalf("err = %v, want the pixel-cap error", err)
	}
	if _, err := DecodeBytes(enc, 64*48); err != nil {
		t.Fatal(err)
	}
}

// TestJPEGTurboCMYK: an Adobe CMYK JPEG (which libjpeg-turbo cannot decode to
// RGB) still decodes, through image/jpeg.
func TestJPEGTurboCMYK(t *testing.T) {
	useJPEG(t, JPEGTurbo)
	src := image.NewCMYK(image.Rect(0, 0, 16, 8))
	for i := range src.Pix {
		src.Pix[i] = uint8(i * 7)
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, src, &jpeg.Options{Quality: 95}); err != nil {
		t.Fatal(err)
	}
	m, err := DecodeBytes(buf.Bytes(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := m.(*image.RGBA); !ok || m.Bounds() != src.Rect {
		t.Fatalf("got %T %v", m, m.Bounds())
	}
}

func TestSelectJPEG(t *testing.T) {
	t.Cleanup(func() { _ = SelectJPEG(os.Getenv(EnvJPEG)) })
	if err := SelectJPEG("mozjpeg"); err == nil || !strings.Contains(err.Error(), "unknown JPEG decoder") {
		t.Fatalf("err = %v", err)
	}
	if _, err := DecodeBytes(encJPEG(t, photoLike(8, 8), 90), 0); err == nil {
		t.Fatal("decoding with an unknown decoder selected succeeded")
	}
	if err := SelectJPEG(JPEGGo); err != nil {
		t.Fatal(err)
	}
	if name, err := JPEGDecoder(); err != nil || name != "image/jpeg" {
		t.Fatalf("JPEGDecoder() = %q, %v", name, err)
	}
	if err := SelectJPEG(JPEGAuto); err != nil {
		t.Fatal(err)
	}
	name, err := JPEGDecoder()
	if err != nil || !strings.HasPrefix(name, "libjpeg-turbo (") && !strings.HasPrefix(name, "image/jpeg (libjpeg-turbo not loaded: ") {
		t.Fatalf("auto: JPEGDecoder() = %q, %v", name, err)
	}
}

func BenchmarkDecodeJPEG(b *testing.B) {
	for _, size := range []int{64, 224, 640} {
		enc := encJPEG(b, photoLike(size, size*3/4), 90)
		for _, dec := range []string{JPEGGo, JPEGTurbo} {
			b.Run(fmt.Sprintf("%s/%dx%d", dec, size, size*3/4), func(b *testing.B) {
				useJPEG(b, dec)
				b.SetBytes(int64(size * size * 3 / 4))
				for b.Loop() {
					if _, err := DecodeBytes(enc, 0); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// TestDecodeEvalTensorMatches: the pooled decode-to-tensor path gives
// exactly DecodeBytes + EvalTensor, for both JPEG decoders, an EXIF-rotated
// JPEG, gray and PNG input, with buffers reused across sizes in between.
func TestDecodeEvalTensorMatches(t *testing.T) {
	exif, err := os.ReadFile("testdata/seed-exif6.jpg")
	if err != nil {
		t.Fatal(err)
	}
	gray := image.NewGray(image.Rect(0, 0, 40, 30))
	for i := range gray.Pix {
		gray.Pix[i] = uint8(i)
	}
	inputs := map[string][]byte{
		"jpeg big":   encJPEG(t, photoLike(300, 200), 90),
		"jpeg small": encJPEG(t, photoLike(33, 21), 80),
		"jpeg gray":  encJPEG(t, gray, 90),
		"jpeg exif":  exif,
		"png":        encPNG(t, photoLike(20, 10)),
	}
	for _, dec := range []string{JPEGGo, JPEGTurbo} {
		t.Run(dec, func(t *testing.T) {
			useJPEG(t, dec)
			for round := range 2 {
				for _, name := range []string{"jpeg big", "jpeg small", "jpeg gray", "jpeg exif", "png"} {
					for _, ch := range []int{3, 1} {
						m, err := DecodeBytes(inputs[name], 0)
						if err != nil {
							t.Fatal(err)
						}
						want := make([]float32, ch*24*24)
						EvalTensor(m, 24, ch, BiTNorm, want)
						got := make([]float32, len(want))
						if err := DecodeEvalTensor(inputs[name], 0, 24, ch, BiTNorm, got); err != nil {
							t.Fatal(err)
						}
						for i := range got {
							if got[i] != want[i] {
								t.Fatalf("round %d %s, %d channels: value %d = %v, DecodeBytes+EvalTensor %v", round, name, ch, i, got[i], want[i])
							}
						}
					}
				}
			}
			if err := DecodeEvalTensor(inputs["jpeg big"][:500], 0, 24, 3, BiTNorm, make([]float32, 3*24*24)); !errors.Is(err, ErrBadImage) {
				t.Fatalf("truncated: err = %v", err)
			}
		})
	}
}

// TestJPEGGoTestdata decodes every JPEG of Go's own image/testdata (real
// video frames: baseline, progressive, 4:1:0 to 4:4:4 subsampling, restart
// markers, CMYK, RGB, gray, a truncated progressive stream) with both
// decoders: they must agree on success and, on the pixels, to within a few
// levels on average.
func TestJPEGGoTestdata(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(goruntime.GOROOT(), "src", "image", "testdata", "*.jpeg"))
	if len(files) < 10 {
		t.Skipf("Go's image/testdata JPEGs not found under GOROOT %q", goruntime.GOROOT())
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		useJPEG(t, JPEGGo)
		ref, refErr := DecodeBytes(b, 0)
		useJPEG(t, JPEGTurbo)
		got, err := DecodeBytes(b, 0)
		if (err == nil) != (refErr == nil) {
			t.Errorf("%s: libjpeg-turbo error %v, image/jpeg error %v", filepath.Base(f), err, refErr)
			continue
		}
		if err != nil {
			continue
		}
		if got.Bounds() != ref.Bounds() {
			t.Errorf("%s: bounds %v vs %v", filepath.Base(f), got.Bounds(), ref.Bounds())
			continue
		}
		bd := got.Bounds()
		sum := 0
		for y := 0; y < bd.Dy(); y++ {
			for x := 0; x < bd.Dx(); x++ {
				a, c := rgbAt(got, x, y), rgbAt(ref, x, y)
				sum += absi(a[0]-c[0]) + absi(a[1]-c[1]) + absi(a[2]-c[2])
			}
		}
		mean := float64(sum) / float64(3*bd.Dx()*bd.Dy())
		if mean > 3 {
			t.Errorf("%s: mean |diff| %.2f levels between the decoders", filepath.Base(f), mean)
		}
	}
}
