package data

import (
	"errors"
	"image"
	"os"
	"path/filepath"
	goruntime "runtime"
	"testing"
	"time"

	"github.com/bitrun/bitrun/internal/progjpeg"
	"github.com/bitrun/bitrun/internal/turbojpeg"
)

// heapGrowth runs f and returns how many bytes it allocated.
func heapGrowth(f func()) uint64 {
	var before, after goruntime.MemStats
	goruntime.ReadMemStats(&before)
	f()
	goruntime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestJPEGCraftedProgressiveDecodes: the generator makes valid streams, so
// the bomb tests below fail on the bounds, not on malformed data: a small
// progressive stream (DC scan plus one AC scan per component) decodes to
// flat grey with both decoders.
func TestJPEGCraftedProgressiveDecodes(t *testing.T) {
	enc := progjpeg.Stream{W: 40, H: 24, Comps: 3, DC: true, ACScans: 3}.Encode()
	for _, dec := range []string{JPEGGo, JPEGTurbo} {
		t.Run(dec, func(t *testing.T) {
			useJPEG(t, dec)
			m, err := DecodeBytes(enc, 0)
			if err != nil {
				t.Fatal(err)
			}
			if m.Bounds() != image.Rect(0, 0, 40, 24) {
				t.Fatalf("bounds %v", m.Bounds())
			}
			if c := rgbAt(m, 17, 9); absi(c[0]-128) > 2 || absi(c[1]-128) > 2 || absi(c[2]-128) > 2 {
				t.Fatalf("pixel %v, want flat grey", c)
			}
		})
	}
}

// TestJPEGDecodeBombs (issue 12, item 1): streams whose decoding costs far
// more than their size are refused from their markers, before either
// decoder allocates pixels or coefficients, quickly, with a
// *DecodeCostError wrapping ErrBadImage.
func TestJPEGDecodeBombs(t *testing.T) {
	for _, tc := range []struct {
		name      string
		b         []byte
		maxPixels int
		what      string
	}{
		// 6300x6300, 3 components, no DC scan: a few hundred bytes that
		// made image/jpeg allocate ~600 MB of coefficients and pixels.
		{"tiny frame-only", progjpeg.Stream{W: 6300, H: 6300, Comps: 3, ACScans: 1}.Encode(), 0, "blocks for the coded data"},
		// Hundreds of scans walking the whole frame.
		{"many scans", progjpeg.Stream{W: 256, H: 256, Comps: 1, DC: true, ACScans: 520}.Encode(), 0, "scans"},
		// Under the scan cap, but 60 walks over the frame.
		{"many passes", progjpeg.Stream{W: 512, H: 512, Comps: 1, DC: true, ACScans: 60}.Encode(), 0, "block visits"},
		// Coefficients of a 4:4:4 progressive frame over the pixel cap's
		// budget (6 bytes per allowed pixel; this one needs 12).
		{"coefficient memory", progjpeg.Stream{W: 512, H: 512, Comps: 3, DC: true, ACScans: 3}.Encode(), 512 * 512, "coefficient bytes"},
	} {
		for _, dec := range []string{JPEGGo, JPEGTurbo} {
			t.Run(tc.name+"/"+dec, func(t *testing.T) {
				useJPEG(t, dec)
				var err error
				start := time.Now()
				grew := heapGrowth(func() { _, err = DecodeBytes(tc.b, tc.maxPixels) })
				var ce *DecodeCostError
				if !errors.As(err, &ce) || !errors.Is(err, ErrBadImage) {
					t.Fatalf("%d-byte stream: err = %v, want a *DecodeCostError wrapping ErrBadImage", len(tc.b), err)
				}
				if ce.What != tc.what {
					t.Fatalf("refused for %q (%v), want %q", ce.What, err, tc.what)
				}
				// Refused from the markers: no pixel or coefficient buffer.
				if limit := uint64(len(tc.b))*4 + 1<<20; grew > limit {
					t.Errorf("allocated %d bytes while refusing a %d-byte stream (want <= %d)", grew, len(tc.b), limit)
				}
				if d := time.Since(start); d > 2*time.Second {
					t.Errorf("refusing took %v", d)
				}
			})
		}
	}
	// The same streams under the bounds still decode (the tests above fail
	// on the bound, not on the stream): fewer scans, a smaller frame.
	for _, p := range []progjpeg.Stream{
		{W: 512, H: 512, Comps: 1, DC: true, ACScans: maxJPEGPasses - 1},
		{W: 256, H: 256, Comps: 3, DC: true, ACScans: 3},
	} {
		if _, err := decodeWith(t, JPEGGo, p.Encode(), 512*512); err != nil {
			t.Errorf("%+v: %v", p, err)
		}
	}
}

func decodeWith(t *testing.T, dec string, b []byte, maxPixels int) (image.Image, error) {
	t.Helper()
	useJPEG(t, dec)
	return DecodeBytes(b, maxPixels)
}

// TestJPEGTurboErrorsAreFinal (issue 12, item 1): a stream libjpeg-turbo
// fails on is bad; image/jpeg does not decode it a second time. An AC scan
// before the DC scan is an inconsistent progression, a warning libjpeg-turbo
// stops on and image/jpeg ignores.
func TestJPEGTurboErrorsAreFinal(t *testing.T) {
	enc := progjpeg.Stream{W: 8, H: 8, Comps: 1, DC: false, ACScans: 1}.Encode()
	_, goErr := decodeWith(t, JPEGGo, enc, 0)
	if goErr != nil {
		t.Fatalf("image/jpeg refused the stream too (%v); the test needs one only libjpeg-turbo refuses", goErr)
	}
	_, err := decodeWith(t, JPEGTurbo, enc, 0)
	var de *turbojpeg.DecodeError
	if !errors.As(err, &de) || !errors.Is(err, ErrBadImage) {
		t.Fatalf("err = %v, want libjpeg-turbo's *turbojpeg.DecodeError wrapping ErrBadImage", err)
	}
}

// TestJPEGCostRealFiles: every JPEG of Go's image/testdata (baseline and
// progressive, 4:1:0 to 4:4:4) and of testdata/ (but the bomb) is within the bounds with a
// pixel cap of twice its size (a 4:4:4 progressive frame needs 1.5 times its
// pixel count at 8 bytes per allowed pixel).
func TestJPEGCostRealFiles(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(goruntime.GOROOT(), "src", "image", "testdata", "*.jpeg"))
	local, _ := filepath.Glob(filepath.Join("testdata", "*.jpg"))
	for _, f := range append(files, local...) {
		if filepath.Base(f) == "seed-bomb.jpg" {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		l := parseJPEGLayout(b)
		if l.scans == 0 || l.width == 0 {
			t.Fatalf("%s: layout %+v", f, l)
		}
		if err := checkJPEGCost(b, 2*l.width*l.height); err != nil {
			t.Errorf("%s: %v", filepath.Base(f), err)
		}
	}
}

// FuzzJPEGCost: the marker walk never panics, never reads past the input,
// and whatever passes the check is within the bounds it states.
func FuzzJPEGCost(f *testing.F) {
	f.Add(progjpeg.Stream{W: 40, H: 24, Comps: 3, DC: true, ACScans: 3}.Encode())
	f.Add(progjpeg.Stream{W: 6300, H: 6300, Comps: 3, ACScans: 1}.Encode())
	if b, err := os.ReadFile(filepath.Join("testdata", "seed-4x4.jpg")); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) < 2 {
			return
		}
		l := parseJPEGLayout(b)
		if l.entropyBytes > int64(len(b)) || l.scans > len(b)/4 || l.visits < 0 {
			t.Fatalf("layout %+v of %d bytes", l, len(b))
		}
		const maxPixels = 1 << 20
		if checkJPEGCost(b, maxPixels) != nil || len(l.comps) == 0 || l.width == 0 || l.height == 0 {
			return
		}
		var coded, alloc int64
		for i := range l.comps {
			c, a := l.blocks(i)
			coded, alloc = coded+c, alloc+a
		}
		if l.scans > MaxJPEGScans || coded > 8*l.entropyBytes+1 || l.visits > maxJPEGPasses*coded ||
			l.progressive && alloc*256 > maxCoefBytesPerPixel*maxPixels {
			t.Fatalf("layout %+v passed the check", l)
		}
	})
}
