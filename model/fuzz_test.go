package model

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/bitrun/bitrun/nn"
)

// addSeeds adds every file matching pattern (up to 64 KiB) to the corpus.
func addSeeds(f *testing.F, pattern string) {
	f.Helper()
	files, err := filepath.Glob(pattern)
	if err != nil || len(files) == 0 {
		f.Fatalf("no seeds match %s: %v", pattern, err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		if len(b) <= 64<<10 {
			f.Add(b)
		}
	}
}

// FuzzReadNPY: any input gives a consistent tensor or an ErrFormat error,
// never a panic; the tensor never holds more data than the input did, and a
// tensor read back after writing is bit-identical.
func FuzzReadNPY(f *testing.F) {
	addSeeds(f, filepath.Join("testdata", "npy", "*.npy"))
	addSeeds(f, filepath.Join("testdata", "logits*.npy"))
	f.Fuzz(func(t *testing.T, data []byte) {
		x, err := ReadNPY(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("error %v does not wrap ErrFormat", err)
			}
			return
		}
		if err := checkTensor(x); err != nil {
			t.Fatal(err)
		}
		if 4*len(x.Data) > len(data) {
			t.Fatalf("%d values from %d bytes", len(x.Data), len(data))
		}
		y, err := ReadNPY(bytes.NewReader(npyBytes(t, x)))
		if err != nil {
			t.Fatal(err)
		}
		assertBitIdentical(t, "again", y, x)
	})
}

// FuzzReadNPZ: any input gives consistent tensors or an ErrFormat error,
// never a panic; the arrays never exceed the deflate expansion limit of the
// input, and ReadNPZShapes agrees with ReadNPZ.
func FuzzReadNPZ(f *testing.F) {
	addSeeds(f, filepath.Join("testdata", "*.npz"))
	var buf bytes.Buffer
	if err := WriteNPZ(&buf, Params{"a": nn.FromData([]float32{1, 2}, 2), "b/c": nn.New(1, 1, 2, 1)}); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ReadNPZ(bytes.NewReader(data), int64(len(data)))
		shapes, serr := ReadNPZShapes(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("error %v does not wrap ErrFormat", err)
			}
			if serr != nil && !errors.Is(serr, ErrFormat) {
				t.Fatalf("shapes error %v does not wrap ErrFormat", serr)
			}
			return
		}
		if serr != nil {
			t.Fatalf("ReadNPZ succeeded but ReadNPZShapes failed: %v", serr)
		}
		var total int64
		for k, x := range p {
			if err := checkTensor(x); err != nil {
				t.Fatalf("%s: %v", k, err)
			}
			if !nn.SameShape(shapes[k], x.Shape) {
				t.Fatalf("%s: ReadNPZShapes says %v, ReadNPZ %v", k, shapes[k], x.Shape)
			}
			total += 4 * int64(len(x.Data))
		}
		if len(shapes) != len(p) {
			t.Fatalf("%d shapes for %d arrays", len(shapes), len(p))
		}
		if total > int64(len(data))*maxDeflateRatio {
			t.Fatalf("%d bytes of arrays from a %d-byte archive", total, len(data))
		}
	})
}
