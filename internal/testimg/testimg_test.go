package testimg

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"testing"
)

func TestReadPNG(t *testing.T) {
	m := image.NewNRGBA(image.Rect(0, 0, 3, 2))
	m.Set(2, 1, color.NRGBA{10, 20, 30, 255})
	var b bytes.Buffer
	if err := png.Encode(&b, m); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "m.png")
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	got := ReadPNG(t, path)
	if got.Bounds() != m.Bounds() || got.At(2, 1) != m.At(2, 1) {
		t.Errorf("read %v with (2,1) = %v, want %v with %v", got.Bounds(), got.At(2, 1), m.Bounds(), m.At(2, 1))
	}
}

func TestPNGHeader(t *testing.T) {
	cfg, err := png.DecodeConfig(bytes.NewReader(PNGHeader(50000, 40000)))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Width != 50000 || cfg.Height != 40000 || cfg.ColorModel != color.NRGBAModel {
		t.Errorf("header decodes as %dx%d %v", cfg.Width, cfg.Height, cfg.ColorModel)
	}
	if _, err := png.Decode(bytes.NewReader(PNGHeader(1, 1))); err == nil {
		t.Error("a header without pixel data decoded")
	}
}
