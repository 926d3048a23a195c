package data

import (
	"bytes"
	"encoding/binary"
	"flag"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/bitrun/bitrun/internal/progjpeg"
	"github.com/bitrun/bitrun/internal/testimg"
	"golang.org/x/image/bmp"
)

var update = flag.Bool("update", false, "regenerate data/testdata seed files")

// pattern is a small opaque test image with distinct pixel values.
func pattern(w, h int) *image.RGBA {
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			m.SetRGBA(x, y, color.RGBA{uint8(x * 255 / max(w-1, 1)), uint8(y * 255 / max(h-1, 1)), uint8(100 + 10*((x+y)%5)), 255})
		}
	}
	return m
}

// quadrants is a w×h image whose four quadrants have the colours q
// (TL, TR, BL, BR).
func quadrants(w, h int, q [4]color.RGBA) *image.RGBA {
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			k := 0
			if x >= w/2 {
				k++
			}
			if y >= h/2 {
				k += 2
			}
			m.SetRGBA(x, y, q[k])
		}
	}
	return m
}

func encPNG(t testing.TB, m image.Image) []byte {
	t.Helper()
	return encoded(t, func(w io.Writer) error { return png.Encode(w, m) })
}

func encJPEG(t testing.TB, m image.Image, q int) []byte {
	t.Helper()
	return encoded(t, func(w io.Writer) error { return jpeg.Encode(w, m, &jpeg.Options{Quality: q}) })
}

func encGIF(t testing.TB, m image.Image) []byte {
	t.Helper()
	return encoded(t, func(w io.Writer) error { return gif.Encode(w, m, nil) })
}

func encBMP(t testing.TB, m image.Image) []byte {
	t.Helper()
	return encoded(t, func(w io.Writer) error { return bmp.Encode(w, m) })
}

// encoded is what enc writes, failing t on its error.
func encoded(t testing.TB, enc func(w io.Writer) error) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := enc(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// exifSegment builds an APP1 Exif segment holding only IFD0 with the
// orientation tag, in the given byte order.
func exifSegment(o uint16, bo binary.ByteOrder) []byte {
	var t bytes.Buffer
	if bo == binary.LittleEndian {
		t.WriteString("II")
	} else {
		t.WriteString("MM")
	}
	w16 := func(v uint16) { var b [2]byte; bo.PutUint16(b[:], v); t.Write(b[:]) }
	w32 := func(v uint32) { var b [4]byte; bo.PutUint32(b[:], v); t.Write(b[:]) }
	w16(42)
	w32(8)      // IFD0 offset
	w16(2)      // entries
	w16(0x010F) // Make, ASCII, 4 bytes inline: an unrelated tag first
	w16(2)
	w32(4)
	t.WriteString("Go\x00\x00")
	w16(0x0112) // Orientation, SHORT, 1
	w16(3)
	w32(1)
	w16(o)
	w16(0)
	w32(0) // no next IFD
	payload := append([]byte("Exif\x00\x00"), t.Bytes()...)
	return app1(payload)
}

func app1(payload []byte) []byte {
	seg := []byte{0xFF, 0xE1, 0, 0}
	binary.BigEndian.PutUint16(seg[2:], uint16(len(payload)+2))
	return append(seg, payload...)
}

// withSegment inserts seg right after the JPEG SOI marker.
func withSegment(jpg, seg []byte) []byte {
	out := append([]byte{}, jpg[:2]...)
	out = append(out, seg...)
	return append(out, jpg[2:]...)
}

// rgbAt reads 8-bit RGB from one of Decode's result types.
func rgbAt(m image.Image, x, y int) [3]int {
	r, g, b, _ := m.At(x, y).RGBA()
	return [3]int{int(r >> 8), int(g >> 8), int(b >> 8)}
}

func absi(a int) int {
	if a < 0 {
		return -a
	}
	return a
}

// seedFiles are the tiny files checked into testdata (the fuzz seeds). The
// .webp files are made from seed-4x4.png with cwebp (see testdata/README.md).
func seedFiles(t testing.TB) map[string][]byte {
	p4 := pattern(4, 4)
	gray := image.NewGray(image.Rect(0, 0, 4, 3))
	for i := range gray.Pix {
		gray.Pix[i] = uint8(i * 20)
	}
	pal := image.NewPaletted(image.Rect(0, 0, 3, 3), color.Palette{color.RGBA{0, 0, 0, 0}, color.RGBA{255, 0, 0, 255}, color.RGBA{0, 0, 255, 255}})
	for i := range pal.Pix {
		pal.Pix[i] = uint8(i % 3)
	}
	nrgba := image.NewNRGBA(image.Rect(0, 0, 2, 2))
	copy(nrgba.Pix, []byte{255, 0, 0, 128, 0, 255, 0, 0, 0, 0, 255, 255, 10, 20, 30, 200})
	return map[string][]byte{
		"seed-4x4.png":         encPNG(t, p4),
		"seed-gray.png":        encPNG(t, gray),
		"seed-alpha.png":       encPNG(t, nrgba),
		"seed-4x4.jpg":         encJPEG(t, p4, 90),
		"seed-exif6.jpg":       withSegment(encJPEG(t, quadrants(16, 8, [4]color.RGBA{{255, 0, 0, 255}, {0, 255, 0, 255}, {0, 0, 255, 255}, {255, 255, 255, 255}}), 90), exifSegment(6, binary.BigEndian)),
		"seed-palette.gif":     encGIF(t, pal),
		"seed-4x4.bmp":         encBMP(t, p4),
		"seed-huge-header.png": testimg.PNGHeader(50000, 50000),
		"seed-progressive.jpg": progjpeg.Stream{W: 40, H: 40, Comps: 3, DC: true, ACScans: 3}.Encode(),
		"seed-bomb.jpg":        progjpeg.Stream{W: 6300, H: 6300, Comps: 3, ACScans: 1}.Encode(),
	}
}

// TestTestdata checks that the checked-in seed files decode exactly like
// their generator's output (encoders may change bytes between Go releases,
// so pixels are compared, not bytes). Run with -update to rewrite them.
func TestTestdata(t *testing.T) {
	for name, want := range seedFiles(t) {
		p := filepath.Join("testdata", name)
		if *update {
			if err := os.WriteFile(p, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(p)
		if err != nil {
			t.Fatalf("%v (run go test ./data -run TestTestdata -update)", err)
		}
		mw, errw := DecodeBytes(want, 1<<20)
		mg, errg := DecodeBytes(got, 1<<20)
		if (errw == nil) != (errg == nil) {
			t.Errorf("%s: checked-in error %v, generator error %v", name, errg, errw)
			continue
		}
		if errw != nil {
			continue
		}
		if mw.Bounds() != mg.Bounds() {
			t.Errorf("%s: bounds %v, generator %v", name, mg.Bounds(), mw.Bounds())
			continue
		}
		b := mw.Bounds()
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				if p, q := rgbAt(mg, x, y), rgbAt(mw, x, y); absi(p[0]-q[0])+absi(p[1]-q[1])+absi(p[2]-q[2]) > 6 {
					t.Fatalf("%s: pixel (%d,%d) = %v, generator %v", name, x, y, p, q)
				}
			}
		}
	}
}
