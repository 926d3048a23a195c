package data

import (
	"bytes"
	"image"
	"image/png"
	"testing"
)

// Pixels reads the declared size from the header alone; anything it cannot
// read is 0 (the decode then fails before allocating).
func TestPixels(t *testing.T) {
	var b bytes.Buffer
	if err := png.Encode(&b, image.NewGray(image.Rect(0, 0, 3, 5))); err != nil {
		t.Fatal(err)
	}
	if n := Pixels(b.Bytes()); n != 15 {
		t.Errorf("3x5 PNG: %d pixels", n)
	}
	for _, bad := range [][]byte{nil, []byte("not an image"), b.Bytes()[:12]} {
		if n := Pixels(bad); n != 0 {
			t.Errorf("%q: %d pixels, want 0", bad, n)
		}
	}
}
