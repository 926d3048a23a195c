package turbojpeg

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"strings"
	"sync"
	"testing"

	"github.com/bitrun/bitrun/internal/testenv"
)

// openOrSkip loads the library, failing when BITRUN_REQUIRE_TURBOJPEG=1 and
// skipping (with the reason) otherwise when it is not installed.
func openOrSkip(t *testing.T) *Lib {
	t.Helper()
	return testenv.Open(t, "BITRUN_REQUIRE_TURBOJPEG", "libturbojpeg", Open)
}

// gradient is a w×h image whose colour varies slowly (no chroma edges), so
// both decoders must reproduce it closely.
func gradient(w, h int) *image.RGBA {
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			m.SetRGBA(x, y, color.RGBA{uint8(255 * x / w), uint8(255 * y / h), 128, 255})
		}
	}
	return m
}

func encode(t *testing.T, m image.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, m, &jpeg.Options{Quality: 95}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// decodeRGBA decodes the w×h JPEG enc to RGBA, failing t on an error.
func decodeRGBA(t *testing.T, l *Lib, enc []byte, w, h int) []byte {
	t.Helper()
	dst := make([]byte, w*h*4)
	if err := l.Decode(enc, FormatRGBA, dst, w, h); err != nil {
		t.Fatal(err)
	}
	return dst
}

func TestDecodeRGBAMatchesSource(t *testing.T) {
	l := openOrSkip(t)
	src := gradient(50, 30)
	enc := encode(t, src)
	h, err := l.Header(enc)
	if err != nil {
		t.Fatal(err)
	}
	if h.Width != 50 || h.Height != 30 || h.Colorspace != YCbCr {
		t.Fatalf("header %+v, want 50x30 YCbCr", h)
	}
	dst := decodeRGBA(t, l, enc, 50, 30)
	worst := 0
	for i := 0; i < len(dst); i += 4 {
		if dst[i+3] != 0xFF {
			t.Fatalf("alpha %d at pixel %d, want 255", dst[i+3], i/4)
		}
		for c := 0; c < 3; c++ {
			d := int(dst[i+c]) - int(src.Pix[i+c])
			worst = max(worst, d, -d)
		}
	}
	if worst > 6 {
		t.Errorf("worst channel error %d levels against the source, want <= 6", worst)
	}
}

func TestDecodeGray(t *testing.T) {
	l := openOrSkip(t)
	src := image.NewGray(image.Rect(0, 0, 17, 9))
	for y := 0; y < 9; y++ {
		for x := 0; x < 17; x++ {
			src.Pix[y*17+x] = uint8(10*x + 5*y)
		}
	}
	enc := encode(t, src)
	h, err := l.Header(enc)
	if err != nil || h.Colorspace != Gray {
		t.Fatalf("header %+v, %v; want gray", h, err)
	}
	dst := make([]byte, 17*9)
	if err := l.Decode(enc, FormatGray, dst, 17, 9); err != nil {
		t.Fatal(err)
	}
	for i, v := range dst {
		if d := int(v) - int(src.Pix[i]); d > 4 || d < -4 {
			t.Fatalf("pixel %d = %d, source %d", i, v, src.Pix[i])
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	l := openOrSkip(t)
	enc := encode(t, gradient(64, 64))
	dst := make([]byte, 64*64*4)
	var de *DecodeError
	if err := l.Decode(enc[:len(enc)/2], FormatRGBA, dst, 64, 64); !errors.As(err, &de) {
		t.Errorf("truncated stream: err = %v, want a *DecodeError", err)
	}
	if _, err := l.Header([]byte("not a jpeg at all")); !errors.As(err, &de) {
		t.Errorf("garbage header: err = %v, want a *DecodeError", err)
	}
	if _, err := l.Header(nil); !errors.As(err, &de) {
		t.Errorf("empty header: err = %v, want a *DecodeError", err)
	}
	if err := l.Decode(enc, FormatRGBA, dst[:100], 64, 64); err == nil || !strings.Contains(err.Error(), "destination holds 100 bytes") {
		t.Errorf("short destination: err = %v", err)
	}
	if err := l.Decode(enc, Format(1), dst, 64, 64); err == nil {
		t.Error("unsupported format accepted")
	}
	if err := l.Decode(enc, FormatRGBA, dst, 0, 64); err == nil {
		t.Error("zero width accepted")
	}
}

// TestConcurrentDecodes runs more decodes at once than the handle pool keeps
// (run it with -race): every result must be right.
func TestConcurrentDecodes(t *testing.T) {
	l := openOrSkip(t)
	enc := encode(t, gradient(40, 40))
	want := decodeRGBA(t, l, enc, 40, 40)
	var wg sync.WaitGroup
	for range 2 * idleHandles {
		wg.Go(func() {
			got := make([]byte, len(want))
			for range 5 {
				if err := l.Decode(enc, FormatRGBA, got, 40, 40); err != nil {
					t.Error(err)
					return
				}
				if !bytes.Equal(got, want) {
					t.Error("concurrent decode differs")
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestCloseIsIdempotentAndFinal(t *testing.T) {
	l := openOrSkip(t)
	enc := encode(t, gradient(8, 8))
	dst := decodeRGBA(t, l, enc, 8, 8)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Decode(enc, FormatRGBA, dst, 8, 8); err == nil || !strings.Contains(err.Error(), "after Close") {
		t.Fatalf("decode after Close: err = %v", err)
	}
}

func TestOpenPathMissing(t *testing.T) {
	_, err := OpenPath("/nonexistent/libturbojpeg.so.0")
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
	if _, err := OpenPath(""); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("empty path: err = %v", err)
	}
}

func TestEnvLibIsTheOnlyCandidate(t *testing.T) {
	t.Setenv(EnvLib, "/some/where/libturbojpeg.so")
	if c := Candidates(); len(c) != 1 || c[0] != "/some/where/libturbojpeg.so" {
		t.Fatalf("candidates %v", c)
	}
	if _, err := Open(); !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "/some/where/libturbojpeg.so") {
		t.Fatalf("err = %v", err)
	}
}

// TestOpenNotTurboJPEG: a library without the TurboJPEG API (the C library)
// is refused, naming the first missing symbol.
func TestOpenNotTurboJPEG(t *testing.T) {
	if !cgoEnabled {
		t.Skip("needs cgo (the stub is covered by TestOpenPathMissing)")
	}
	_, err := OpenPath("libc.so.6")
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "has no tjInitDecompress") {
		t.Fatalf("err = %v", err)
	}
}
