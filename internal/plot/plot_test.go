package plot

import (
	"image"
	"image/color"
	"path/filepath"
	"testing"

	"github.com/bitrun/bitrun/internal/testimg"
)

func TestDraw(t *testing.T) {
	c := New(20, 10)
	red := color.RGBA{0xff, 0, 0, 0xff}
	c.Line(2, 2, 10, 6, red)
	for _, p := range []image.Point{{2, 2}, {10, 6}, {6, 4}} {
		if got := c.RGBAAt(p.X, p.Y); got != red {
			t.Errorf("line: pixel %v = %v, want red", p, got)
		}
	}
	if got := c.RGBAAt(0, 9); got != (color.RGBA{0xff, 0xff, 0xff, 0xff}) {
		t.Errorf("background = %v, want white", got)
	}
	c = New(20, 10)
	c.Frame(image.Rect(1, 1, 5, 4), red)
	for _, p := range []image.Point{{1, 1}, {5, 1}, {1, 4}, {5, 4}, {3, 4}} {
		if got := c.RGBAAt(p.X, p.Y); got != red {
			t.Errorf("frame: pixel %v = %v, want red", p, got)
		}
	}
	if got := c.RGBAAt(3, 2); got == red {
		t.Error("frame filled its inside")
	}
	if w := TextWidth("abc"); w != 21 {
		t.Errorf("TextWidth(abc) = %d, want 21 (7 px a character)", w)
	}
}

func TestWritePNG(t *testing.T) {
	c := New(16, 8)
	c.Fill(image.Rect(0, 0, 4, 4), color.Black)
	c.Text("x", 6, 7, color.Black)
	path := filepath.Join(t.TempDir(), "p.png")
	if err := c.WritePNG(path); err != nil {
		t.Fatal(err)
	}
	img := testimg.ReadPNG(t, path)
	if img.Bounds() != c.Bounds() {
		t.Fatalf("decoded %v, want %v", img.Bounds(), c.Bounds())
	}
	if r, _, _, _ := img.At(1, 1).RGBA(); r != 0 {
		t.Errorf("filled pixel red = %d, want 0", r)
	}
	dark := 0
	for x := 6; x < 13; x++ {
		for y := 0; y < 8; y++ {
			if r, _, _, _ := img.At(x, y).RGBA(); r < 0x8000 {
				dark++
			}
		}
	}
	if dark == 0 {
		t.Error("text drew nothing")
	}
	if err := c.WritePNG(filepath.Join(t.TempDir(), "missing", "p.png")); err == nil {
		t.Error("writing into a missing folder succeeded")
	}
}
