package data

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/bitrun/bitrun/internal/testimg"
)

func TestDecodeFormats(t *testing.T) {
	src := pattern(9, 7)
	gray := image.NewGray(src.Rect)
	gray16 := image.NewGray16(src.Rect)
	rgba64 := image.NewRGBA64(src.Rect)
	for y := 0; y < 7; y++ {
		for x := 0; x < 9; x++ {
			c := src.RGBAAt(x, y)
			gray.SetGray(x, y, color.Gray{c.R})
			gray16.SetGray16(x, y, color.Gray16{uint16(c.R)<<8 | 0x7f})
			rgba64.SetRGBA64(x, y, color.RGBA64{uint16(c.R) << 8, uint16(c.G) << 8, uint16(c.B) << 8, 0xffff})
		}
	}
	// Chroma is subsampled in JPEG: use an image without high-frequency colour.
	smooth := image.NewRGBA(src.Rect)
	for y := 0; y < 7; y++ {
		for x := 0; x < 9; x++ {
			smooth.SetRGBA(x, y, color.RGBA{uint8(20 * x), uint8(30 * y), 90, 255})
		}
	}
	smoothWant := func(x, y int) [3]int { return [3]int{20 * x, 30 * y, 90} }
	grayWant := func(x, y int) [3]int { v := int(src.RGBAAt(x, y).R); return [3]int{v, v, v} }
	rgbWant := func(x, y int) [3]int { c := src.RGBAAt(x, y); return [3]int{int(c.R), int(c.G), int(c.B)} }
	tests := []struct {
		name     string
		enc      []byte
		wantType string
		want     func(x, y int) [3]int
		tol      int
	}{
		{"png rgba", encPNG(t, src), "*image.RGBA", rgbWant, 0},
		{"png gray", encPNG(t, gray), "*image.Gray", grayWant, 0},
		{"png gray16", encPNG(t, gray16), "*image.Gray", grayWant, 0},
		{"png rgba64", encPNG(t, rgba64), "*image.RGBA", rgbWant, 0},
		{"jpeg colour (image/jpeg)", encJPEG(t, smooth, 100), "*image.YCbCr", smoothWant, 24},
		{"jpeg gray (image/jpeg)", encJPEG(t, gray, 100), "*image.Gray", grayWant, 6},
		{"jpeg colour (libjpeg-turbo)", encJPEG(t, smooth, 100), "*image.RGBA", smoothWant, 24},
		{"jpeg gray (libjpeg-turbo)", encJPEG(t, gray, 100), "*image.Gray", grayWant, 6},
		{"bmp", encBMP(t, src), "*image.RGBA", rgbWant, 0},
		{"bmp gray", encBMP(t, gray), "*image.RGBA", grayWant, 0},
		{"gif", encGIF(t, src), "*image.RGBA", rgbWant, 60}, // palette quantisation
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			switch {
			case strings.Contains(tc.name, "libjpeg-turbo"):
				useJPEG(t, JPEGTurbo)
			case strings.Contains(tc.name, "image/jpeg"):
				useJPEG(t, JPEGGo)
			}
			m, err := Decode(bytes.NewReader(tc.enc), 0)
			if err != nil {
				t.Fatal(err)
			}
			if got := fmt.Sprintf("%T", m); got != tc.wantType {
				t.Errorf("type %s, want %s", got, tc.wantType)
			}
			if m.Bounds() != image.Rect(0, 0, 9, 7) {
				t.Fatalf("bounds %v", m.Bounds())
			}
			for y := 0; y < 7; y++ {
				for x := 0; x < 9; x++ {
					got, want := rgbAt(m, x, y), tc.want(x, y)
					for c := 0; c < 3; c++ {
						if absi(got[c]-want[c]) > tc.tol {
							t.Fatalf("pixel (%d,%d) = %v, want %v ±%d", x, y, got, want, tc.tol)
						}
					}
				}
			}
		})
	}
}

func TestDecodeWebP(t *testing.T) {
	src := pattern(4, 4)
	// Lossy: 4x4 steep gradients with subsampled chroma; bound the mean and
	// the worst error.
	for _, tc := range []struct {
		file         string
		tol, meanTol int
	}{{"seed-4x4-lossless.webp", 0, 0}, {"seed-4x4-lossy.webp", 80, 25}} {
		b, err := os.ReadFile(filepath.Join("testdata", tc.file))
		if err != nil {
			t.Fatal(err)
		}
		m, err := DecodeBytes(b, 0)
		if err != nil {
			t.Fatalf("%s: %v", tc.file, err)
		}
		if m.Bounds() != src.Rect {
			t.Fatalf("%s: bounds %v", tc.file, m.Bounds())
		}
		sum := 0
		for y := 0; y < 4; y++ {
			for x := 0; x < 4; x++ {
				c := src.RGBAAt(x, y)
				got := rgbAt(m, x, y)
				if absi(got[0]-int(c.R)) > tc.tol || absi(got[1]-int(c.G)) > tc.tol || absi(got[2]-int(c.B)) > tc.tol {
					t.Fatalf("%s: pixel (%d,%d) = %v, want %v", tc.file, x, y, got, c)
				}
				sum += absi(got[0]-int(c.R)) + absi(got[1]-int(c.G)) + absi(got[2]-int(c.B))
			}
		}
		if mean := sum / 48; mean > tc.meanTol {
			t.Errorf("%s: mean abs error %d > %d", tc.file, mean, tc.meanTol)
		}
	}
	// Alpha (VP8L with transparency) is composited over white.
	b, err := os.ReadFile(filepath.Join("testdata", "seed-alpha-lossless.webp"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := DecodeBytes(b, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := rgbAt(m, 1, 0); got != [3]int{255, 255, 255} {
		t.Errorf("fully transparent pixel = %v, want white", got)
	}
	if got := rgbAt(m, 0, 1); got != [3]int{0, 0, 255} {
		t.Errorf("opaque blue pixel = %v", got)
	}
}

func TestDecodeAlphaOverWhite(t *testing.T) {
	n := image.NewNRGBA(image.Rect(0, 0, 3, 1))
	n.SetNRGBA(0, 0, color.NRGBA{255, 0, 0, 128}) // half red over white
	n.SetNRGBA(1, 0, color.NRGBA{0, 0, 0, 0})     // transparent
	n.SetNRGBA(2, 0, color.NRGBA{10, 20, 30, 255})
	pal := image.NewPaletted(image.Rect(0, 0, 2, 1), color.Palette{color.RGBA{0, 0, 0, 0}, color.RGBA{0, 0, 200, 255}})
	pal.Pix[1] = 1
	for _, tc := range []struct {
		name string
		enc  []byte
		want [][3]int
	}{
		{"png nrgba", encPNG(t, n), [][3]int{{255, 127, 127}, {255, 255, 255}, {10, 20, 30}}},
		{"gif transparent", encGIF(t, pal), [][3]int{{255, 255, 255}, {0, 0, 200}}},
	} {
		m, err := DecodeBytes(tc.enc, 0)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		rgba, ok := m.(*image.RGBA)
		if !ok {
			t.Fatalf("%s: type %T, want *image.RGBA", tc.name, m)
		}
		for i := 3; i < len(rgba.Pix); i += 4 {
			if rgba.Pix[i] != 255 {
				t.Fatalf("%s: result not opaque", tc.name)
			}
		}
		for x, w := range tc.want {
			if got := rgbAt(m, x, 0); absi(got[0]-w[0]) > 1 || absi(got[1]-w[1]) > 1 || absi(got[2]-w[2]) > 1 {
				t.Errorf("%s: pixel %d = %v, want %v", tc.name, x, got, w)
			}
		}
	}
}

func TestDecodeRejectsHugeHeaderWithoutAllocating(t *testing.T) {
	b := testimg.PNGHeader(50000, 50000)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := Decode(bytes.NewReader(b), 0)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrBadImage) {
		t.Fatalf("err = %v, want ErrBadImage", err)
	}
	for _, s := range []string{"50000x50000", fmt.Sprint(DefaultMaxPixels)} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not mention %s", err, s)
		}
	}
	if d := after.TotalAlloc - before.TotalAlloc; d > 1<<20 {
		t.Errorf("allocated %d bytes rejecting a header (the image would need 10 GB)", d)
	}
	// Custom cap: a 10x10 image with cap 99.
	if _, err := DecodeBytes(encPNG(t, pattern(10, 10)), 99); !errors.Is(err, ErrBadImage) || !strings.Contains(err.Error(), "over the limit of 99") {
		t.Errorf("10x10 with cap 99: %v", err)
	}
	if _, err := DecodeBytes(encPNG(t, pattern(10, 10)), 100); err != nil {
		t.Errorf("10x10 with cap 100: %v", err)
	}
}

func TestDecodeByteCap(t *testing.T) {
	limit := MaxEncodedBytes(10)
	big := append(encPNG(t, pattern(2, 2)), make([]byte, limit)...)
	_, err := Decode(bytes.NewReader(big), 10)
	if !errors.Is(err, ErrBadImage) || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("err = %v", err)
	}
}

func TestDecodeErrors(t *testing.T) {
	src := pattern(16, 16)
	encs := map[string][]byte{
		"png": encPNG(t, src), "jpeg": encJPEG(t, src, 90), "gif": encGIF(t, src), "bmp": encBMP(t, src),
	}
	for _, f := range []string{"seed-4x4-lossless.webp", "seed-4x4-lossy.webp"} {
		b, err := os.ReadFile(filepath.Join("testdata", f))
		if err != nil {
			t.Fatal(err)
		}
		encs[f] = b
	}
	for name, b := range encs {
		for _, n := range []int{len(b) / 2, len(b) - 3, 12, 3} {
			_, err := DecodeBytes(b[:n], 0)
			if !errors.Is(err, ErrBadImage) {
				t.Errorf("%s truncated to %d bytes: err = %v, want ErrBadImage", name, n, err)
			}
		}
	}
	for _, b := range [][]byte{nil, []byte("hello, world"), []byte("\x00\x00\x08\x03")} {
		_, err := DecodeBytes(b, 0)
		if !errors.Is(err, ErrBadImage) || !errors.Is(err, ErrUnknownFormat) {
			t.Errorf("%q: err = %v, want ErrUnknownFormat", b, err)
			continue
		}
		for _, f := range SupportedFormats {
			if !strings.Contains(err.Error(), f) {
				t.Errorf("error %q does not list %s", err, f)
			}
		}
	}
}

var (
	red   = color.RGBA{255, 0, 0, 255}
	green = color.RGBA{0, 255, 0, 255}
	blue  = color.RGBA{0, 0, 255, 255}
	white = color.RGBA{255, 255, 255, 255}
)

func TestEXIFOrientation(t *testing.T) {
	// Source quadrants TL, TR, BL, BR = A, B, C, D; expected layouts after
	// applying each orientation, derived by hand from the EXIF definitions.
	q := [4]color.RGBA{red, green, blue, white}
	const A, B, C, D = 0, 1, 2, 3
	layouts := map[int][4]int{
		1: {A, B, C, D},
		2: {B, A, D, C}, // mirror horizontal
		3: {D, C, B, A}, // rotate 180
		4: {C, D, A, B}, // mirror vertical
		5: {A, C, B, D}, // transpose
		6: {C, A, D, B}, // rotate 90 CW
		7: {D, B, C, A}, // transverse
		8: {B, D, A, C}, // rotate 90 CCW
	}
	const w, h = 32, 16
	jpg := encJPEG(t, quadrants(w, h, q), 95)
	for o, lay := range layouts {
		for _, bo := range []binary.ByteOrder{binary.BigEndian, binary.LittleEndian} {
			m, err := DecodeBytes(withSegment(jpg, exifSegment(uint16(o), bo)), 0)
			if err != nil {
				t.Fatalf("orientation %d: %v", o, err)
			}
			dw, dh := w, h
			if o >= 5 {
				dw, dh = h, w
			}
			if m.Bounds() != image.Rect(0, 0, dw, dh) {
				t.Fatalf("orientation %d: bounds %v, want %dx%d", o, m.Bounds(), dw, dh)
			}
			centres := [4]image.Point{{dw / 4, dh / 4}, {3 * dw / 4, dh / 4}, {dw / 4, 3 * dh / 4}, {3 * dw / 4, 3 * dh / 4}}
			for k, p := range centres {
				got, c := rgbAt(m, p.X, p.Y), q[lay[k]]
				if absi(got[0]-int(c.R)) > 40 || absi(got[1]-int(c.G)) > 40 || absi(got[2]-int(c.B)) > 40 {
					t.Errorf("orientation %d (%v): quadrant %d = %v, want %v", o, bo, k, got, c)
				}
			}
		}
	}
	// Gray JPEG, rotate 90 CW: the left column becomes the top row.
	g := image.NewGray(image.Rect(0, 0, 16, 8))
	for y := 0; y < 8; y++ {
		for x := 0; x < 16; x++ {
			if x < 8 {
				g.Pix[y*16+x] = 250
			}
		}
	}
	m, err := DecodeBytes(withSegment(encJPEG(t, g, 100), exifSegment(6, binary.BigEndian)), 0)
	if err != nil {
		t.Fatal(err)
	}
	mg, ok := m.(*image.Gray)
	if !ok || mg.Rect != image.Rect(0, 0, 8, 16) {
		t.Fatalf("gray rotate: %T %v", m, m.Bounds())
	}
	if top, bottom := mg.GrayAt(4, 3).Y, mg.GrayAt(4, 12).Y; top < 200 || bottom > 50 {
		t.Errorf("gray rotate: top %d bottom %d, want bright then dark", top, bottom)
	}
}

func TestEXIFAfterOtherSegments(t *testing.T) {
	jpg := encJPEG(t, quadrants(16, 8, [4]color.RGBA{red, green, blue, white}), 90)
	app0 := []byte{0xFF, 0xE0, 0, 16, 'J', 'F', 'I', 'F', 0, 1, 1, 0, 0, 1, 0, 1, 0, 0}
	xmp := app1([]byte("http://ns.adobe.com/xap/1.0/\x00<x/>"))
	seg := append(append(append([]byte{}, app0...), xmp...), exifSegment(8, binary.LittleEndian)...)
	m, err := DecodeBytes(withSegment(jpg, seg), 0)
	if err != nil {
		t.Fatal(err)
	}
	if m.Bounds() != image.Rect(0, 0, 8, 16) {
		t.Fatalf("bounds %v, want 8x16 (rotated)", m.Bounds())
	}
	// Orientation 8 puts the source's top-right (green) at the top-left.
	if got := rgbAt(m, 2, 2); got[1] < 200 || got[0] > 60 {
		t.Errorf("top-left = %v, want green", got)
	}
}

func TestNormalizeColourModels(t *testing.T) {
	r := image.Rect(0, 0, 5, 4)
	cmyk := image.NewCMYK(r)
	n64 := image.NewNRGBA64(r)
	a16 := image.NewAlpha16(r)
	nycc := image.NewNYCbCrA(r, image.YCbCrSubsampleRatio420)
	for i := range cmyk.Pix {
		cmyk.Pix[i] = uint8(i * 13)
	}
	for i := range n64.Pix {
		n64.Pix[i] = uint8(i * 29)
	}
	for i := range a16.Pix {
		a16.Pix[i] = uint8(i * 31)
	}
	for i := range nycc.Y {
		nycc.Y[i], nycc.A[i] = uint8(i*11), uint8(i*17)
	}
	for i := range nycc.Cb {
		nycc.Cb[i], nycc.Cr[i] = uint8(100+i), uint8(200-i)
	}
	for _, m := range []image.Image{cmyk, n64, a16, nycc} {
		out, ok := normalize(m).(*image.RGBA)
		if !ok {
			t.Fatalf("%T: normalized to %T", m, normalize(m))
		}
		for y := 0; y < 4; y++ {
			for x := 0; x < 5; x++ {
				// Reference: straight alpha over white in float.
				c := color.NRGBA64Model.Convert(m.At(x, y)).(color.NRGBA64)
				a := float64(c.A) / 0xffff
				want := [3]float64{float64(c.R), float64(c.G), float64(c.B)}
				got := out.RGBAAt(x, y)
				for k, g := range []uint8{got.R, got.G, got.B} {
					w := (want[k]/0xffff*a + 1 - a) * 255
					if math.Abs(float64(g)-w) > 1.01 {
						t.Fatalf("%T (%d,%d) channel %d = %d, want %.1f", m, x, y, k, g, w)
					}
				}
				if got.A != 255 {
					t.Fatalf("%T: not opaque", m)
				}
			}
		}
	}
}

func TestEXIFCorruptIgnored(t *testing.T) {
	jpg := encJPEG(t, quadrants(16, 8, [4]color.RGBA{red, green, blue, white}), 90)
	good := exifSegment(6, binary.BigEndian)
	payload := good[4:]
	bad := map[string][]byte{
		"ifd offset past end": app1(append(append([]byte{}, payload[:10]...), 0xFF, 0xFF, 0xFF, 0x00)),
		"truncated tiff":      app1(payload[:12]),
		"bad byte order":      app1(append([]byte("Exif\x00\x00XX"), payload[8:]...)),
		"orientation 9":       exifSegment(9, binary.BigEndian),
		"orientation 0":       exifSegment(0, binary.LittleEndian),
		"huge entry count":    app1(append(append([]byte{}, payload[:14]...), 0xFF, 0xFF)),
		"only header":         app1([]byte("Exif\x00\x00")),
	}
	for name, seg := range bad {
		m, err := DecodeBytes(withSegment(jpg, seg), 0)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if m.Bounds() != image.Rect(0, 0, 16, 8) {
			t.Errorf("%s: bounds %v, want unrotated 16x8", name, m.Bounds())
		}
	}
	// A segment length running past the end of the file is ignored too (the
	// JPEG decoder then rejects the file).
	seg := append([]byte{}, good...)
	binary.BigEndian.PutUint16(seg[2:], 0xFFFF)
	if o := jpegOrientation(append([]byte{0xFF, 0xD8}, seg...)); o != 1 {
		t.Errorf("overlong segment: orientation %d, want 1", o)
	}
}

// FuzzDecode checks that no input panics, that every error wraps ErrBadImage,
// that the pixel cap holds and that the result is one of the documented types
// and can be preprocessed.
func FuzzDecode(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "seed-*"))
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	const maxPixels = 1 << 16
	dst := make([]float32, 3*8*8)
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeBytes(b, maxPixels)
		if err != nil {
			if !errors.Is(err, ErrBadImage) {
				t.Fatalf("error does not wrap ErrBadImage: %v", err)
			}
			return
		}
		bd := m.Bounds()
		if bd.Empty() || bd.Dx()*bd.Dy() > maxPixels {
			t.Fatalf("bounds %v break the cap %d", bd, maxPixels)
		}
		switch m.(type) {
		case *image.Gray, *image.RGBA, *image.YCbCr:
		default:
			t.Fatalf("unexpected type %T", m)
		}
		EvalTensor(m, 8, 3, BiTNorm, dst)
		for _, v := range dst {
			if v < -1.0001 || v > 1.0001 {
				t.Fatalf("value %v outside [-1, 1]", v)
			}
		}
	})
}

// FuzzJPEGOrientation checks that the EXIF reader never panics and only
// returns valid orientations.
func FuzzJPEGOrientation(f *testing.F) {
	f.Add(withSegment([]byte{0xFF, 0xD8, 0xFF, 0xD9}, exifSegment(6, binary.BigEndian)))
	f.Add(withSegment([]byte{0xFF, 0xD8, 0xFF, 0xD9}, exifSegment(3, binary.LittleEndian)))
	f.Fuzz(func(t *testing.T, b []byte) {
		if o := jpegOrientation(b); o < 1 || o > 8 {
			t.Fatalf("orientation %d", o)
		}
	})
}
