// Package testimg reads and writes the image files that the tests of
// several packages share: a PNG a test wrote to decode back, and a PNG
// header that claims more pixels than any limit allows. It is for tests
// only.
package testimg

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/png"
	"os"
	"testing"
)

// ReadPNG decodes the PNG file at path, failing t when it cannot.
func ReadPNG(t testing.TB, path string) image.Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return img
}

// PNGHeader returns a PNG signature and a valid IHDR chunk claiming w×h
// 8-bit RGBA pixels, followed by an empty IDAT and IEND: a decoder that
// trusts the header before the data would allocate for w×h.
func PNGHeader(w, h uint32) []byte {
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	chunk := func(typ string, data []byte) {
		var l [4]byte
		binary.BigEndian.PutUint32(l[:], uint32(len(data)))
		b.Write(l[:])
		td := append([]byte(typ), data...)
		b.Write(td)
		binary.BigEndian.PutUint32(l[:], crc32.ChecksumIEEE(td))
		b.Write(l[:])
	}
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], w)
	binary.BigEndian.PutUint32(ihdr[4:], h)
	ihdr[8], ihdr[9] = 8, 6 // 8-bit RGBA
	chunk("IHDR", ihdr)
	chunk("IDAT", nil)
	chunk("IEND", nil)
	return b.Bytes()
}
