package data

import (
	"bytes"
	"errors"
	"image"
	"os"
	"path/filepath"
	goruntime "runtime"
	"testing"
	"time"

	"github.com/bitrun/bitrun/internal/turbojpeg"
)

// progJPEG describes a hand-made progressive JPEG: a w×h frame of comps
// components (sampling 1x1), an optional interleaved DC scan coding every
// block as "no change" (one bit each, a flat grey image), then acScans
// first-pass AC scans (spectral band 1-63) that skip every block with
// end-of-band runs of 32767 blocks (15 bits each). Such scans cost a
// decoder a walk over every block of the component for ~15 bits per 32767
// blocks: the decode bomb of issue 12.
type progJPEG struct {
	w, h, comps int
	dc          bool
	acScans     int
	acBand      [2]byte // spectral selection of the AC scans (default 1-63)
}

// bitWriter writes JPEG entropy-coded bits, stuffing a zero after 0xFF.
type bitWriter struct {
	out  []byte
	acc  uint32
	nacc int
}

func (bw *bitWriter) bits(v uint32, n int) {
	for n > 0 {
		n--
		bw.acc = bw.acc<<1 | (v>>n)&1
		bw.nacc++
		if bw.nacc == 8 {
			bw.byte(byte(bw.acc))
			bw.acc, bw.nacc = 0, 0
		}
	}
}

func (bw *bitWriter) byte(b byte) {
	bw.out = append(bw.out, b)
	if b == 0xFF {
		bw.out = append(bw.out, 0)
	}
}

// flush pads the last byte with ones, as encoders do.
func (bw *bitWriter) flush() []byte {
	if bw.nacc > 0 {
		bw.bits(0xFF, 8-bw.nacc)
	}
	return bw.out
}

func segment(marker byte, payload ...byte) []byte {
	n := len(payload) + 2
	return append([]byte{0xFF, marker, byte(n >> 8), byte(n)}, payload...)
}

func (p progJPEG) encode() []byte {
	b := []byte{0xFF, 0xD8}
	dqt := append([]byte{0x00}, bytes.Repeat([]byte{1}, 64)...)
	b = append(b, segment(0xDB, dqt...)...)
	sof := []byte{8, byte(p.h >> 8), byte(p.h), byte(p.w >> 8), byte(p.w), byte(p.comps)}
	for c := range p.comps {
		sof = append(sof, byte(c+1), 0x11, 0)
	}
	b = append(b, segment(0xC2, sof...)...)
	// DC table 0: one 1-bit code, category 0. AC table 0: one 1-bit code,
	// symbol 0xE0 (an end-of-band run of 2^14 + 14 more bits).
	counts := make([]byte, 16)
	counts[0] = 1
	b = append(b, segment(0xC4, append(append([]byte{0x00}, counts...), 0x00)...)...)
	b = append(b, segment(0xC4, append(append([]byte{0x10}, counts...), 0xE0)...)...)
	blocks := ((p.w + 7) / 8) * ((p.h + 7) / 8)
	if p.dc {
		sos := []byte{byte(p.comps)}
		for c := range p.comps {
			sos = append(sos, byte(c+1), 0x00)
		}
		b = append(b, segment(0xDA, append(sos, 0, 0, 0)...)...)
		var bw bitWriter
		for range blocks * p.comps {
			bw.bits(0, 1)
		}
		b = append(b, bw.flush()...)
	}
	band := p.acBand
	if band == [2]byte{} {
		band = [2]byte{1, 63}
	}
	for s := range p.acScans {
		b = append(b, segment(0xDA, 1, byte(s%p.comps+1), 0x00, band[0], band[1], 0)...)
		var bw bitWriter
		for left := blocks; left > 0; left -= 32767 {
			bw.bits(0, 1)        // the 0xE0 code
			bw.bits(1<<14-1, 14) // run = 2^14 + (2^14-1) = 32767 blocks
		}
		b = append(b, bw.flush()...)
	}
	return append(b, 0xFF, 0xD9)
}

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
	enc := progJPEG{w: 40, h: 24, comps: 3, dc: true, acScans: 3}.encode()
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
		{"tiny frame-only", progJPEG{w: 6300, h: 6300, comps: 3, acScans: 1}.encode(), 0, "blocks for the coded data"},
		// Hundreds of scans walking the whole frame.
		{"many scans", progJPEG{w: 256, h: 256, comps: 1, dc: true, acScans: 520}.encode(), 0, "scans"},
		// Under the scan cap, but 60 walks over the frame.
		{"many passes", progJPEG{w: 512, h: 512, comps: 1, dc: true, acScans: 60}.encode(), 0, "block visits"},
		// Coefficients of a 4:4:4 progressive frame over the pixel cap's
		// budget (6 bytes per allowed pixel; this one needs 12).
		{"coefficient memory", progJPEG{w: 512, h: 512, comps: 3, dc: true, acScans: 3}.encode(), 512 * 512, "coefficient bytes"},
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
	for _, p := range []progJPEG{
		{w: 512, h: 512, comps: 1, dc: true, acScans: maxJPEGPasses - 1},
		{w: 256, h: 256, comps: 3, dc: true, acScans: 3},
	} {
		if _, err := decodeWith(t, JPEGGo, p.encode(), 512*512); err != nil {
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
	enc := progJPEG{w: 8, h: 8, comps: 1, dc: false, acScans: 1}.encode()
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
	f.Add(progJPEG{w: 40, h: 24, comps: 3, dc: true, acScans: 3}.encode())
	f.Add(progJPEG{w: 6300, h: 6300, comps: 3, acScans: 1}.encode())
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
