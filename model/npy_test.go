package model

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/bitrun/bitrun/nn"
)

func TestNPYRoundTrip(t *testing.T) {
	special := []float32{0, float32(math.Copysign(0, -1)), float32(math.Inf(1)), float32(math.Inf(-1)),
		math.Float32frombits(0x7fc00001), math.SmallestNonzeroFloat32, math.MaxFloat32, -1.25}
	tests := []struct {
		name  string
		shape []int
	}{
		{"scalar", []int{}},
		{"vector", []int{8}},
		{"matrix", []int{2, 4}},
		{"kernel", []int{1, 2, 2, 2}},
		{"empty", []int{0, 3}},
		{"rank5", []int{3, 7, 11, 13, 17}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := nn.New(tc.shape...)
			for i := range in.Data {
				in.Data[i] = special[i%len(special)] * float32(1+i/len(special))
			}
			var buf bytes.Buffer
			if err := WriteNPY(&buf, in); err != nil {
				t.Fatal(err)
			}
			h, err := ReadNPYHeader(bytes.NewReader(buf.Bytes()))
			if err != nil {
				t.Fatal(err)
			}
			if h.Major != 1 || h.HeaderLen%64 != 0 || int64(buf.Len()) != h.HeaderLen+4*int64(in.Len()) {
				t.Errorf("header version %d.%d length %d for %d bytes of %d values", h.Major, h.Minor, h.HeaderLen, buf.Len(), in.Len())
			}
			out, err := ReadNPY(&buf)
			if err != nil {
				t.Fatal(err)
			}
			assertBitIdentical(t, tc.name, out, in)
		})
	}
}

// TestNPYLargeArray crosses the reader's and writer's 1 MiB chunks.
func TestNPYLargeArray(t *testing.T) {
	in := nn.New(3, 100_003)
	for i := range in.Data {
		in.Data[i] = float32(i) * 0.5
	}
	out, err := ReadNPY(bytes.NewReader(npyBytes(t, in)))
	if err != nil {
		t.Fatal(err)
	}
	assertBitIdentical(t, "large", out, in)
}

func assertBitIdentical(t *testing.T, name string, got, want *nn.Tensor) {
	t.Helper()
	if !nn.SameShape(got.Shape, want.Shape) {
		t.Fatalf("%s: shape %v, want %v", name, got.Shape, want.Shape)
	}
	for i := range want.Data {
		if math.Float32bits(got.Data[i]) != math.Float32bits(want.Data[i]) {
			t.Fatalf("%s[%d]: bits %08x, want %08x", name, i, math.Float32bits(got.Data[i]), math.Float32bits(want.Data[i]))
		}
	}
}

// TestNPYMatchesNumPy checks that WriteNPY produces the bytes numpy.save
// wrote for the same array, and that files NumPy wrote read as expected.
func TestNPYMatchesNumPy(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "npy", "f4_2x3.npy"))
	if err != nil {
		t.Fatal(err)
	}
	a, err := ReadNPY(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if !nn.SameShape(a.Shape, []int{2, 3}) {
		t.Fatalf("shape %v", a.Shape)
	}
	var buf bytes.Buffer
	if err := WriteNPY(&buf, a); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), raw) {
		t.Errorf("WriteNPY bytes differ from numpy.save:\n got %q\nwant %q", buf.Bytes()[:buf.Len()-24], raw[:len(raw)-24])
	}
	// The same array in format 2.0.
	v2 := readNPYFile(t, filepath.Join("testdata", "npy", "f4_v2.npy"))
	assertBitIdentical(t, "v2", v2, a)
	s := readNPYFile(t, filepath.Join("testdata", "npy", "f4_scalar.npy"))
	if len(s.Shape) != 0 || len(s.Data) != 1 || s.Data[0] != 1.5 {
		t.Errorf("scalar: %v %v", s.Shape, s.Data)
	}
	e := readNPYFile(t, filepath.Join("testdata", "npy", "f4_empty.npy"))
	if !nn.SameShape(e.Shape, []int{0, 4}) || len(e.Data) != 0 {
		t.Errorf("empty: %v %v", e.Shape, e.Data)
	}
}

func TestNPYRejects(t *testing.T) {
	valid := func() []byte {
		var buf bytes.Buffer
		if err := WriteNPY(&buf, nn.FromData([]float32{1, 2, 3, 4, 5, 6}, 2, 3)); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	withHeader := func(dict string) []byte {
		b := []byte(npyMagic + "\x01\x00")
		b = binary.LittleEndian.AppendUint16(b, uint16(len(dict)+1))
		b = append(b, dict...)
		return append(b, '\n')
	}
	file := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join("testdata", "npy", name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := []struct {
		name string
		data []byte
		want string // part of the message
	}{
		{"empty", nil, "truncated"},
		{"bad magic", append([]byte("\x93NUMPX\x01\x00"), valid()[8:]...), "bad magic"},
		{"version 9", append([]byte(npyMagic+"\x09\x00"), valid()[8:]...), "version 9.0"},
		{"truncated header", valid()[:40], "truncated"},
		{"truncated data", valid()[:len(valid())-1], "data truncated"},
		{"trailing bytes", append(valid(), 0), "trailing bytes"},
		{"float64", file("f8_2x3.npy"), `"<f8"`},
		{"int64", file("i8_3.npy"), `"<i8"`},
		{"big endian", file("f4_bigendian.npy"), `">f4"`},
		{"fortran", file("f4_fortran.npy"), "fortran_order"},
		{"huge header", append([]byte(npyMagic+"\x02\x00\xff\xff\xff\x7f"), make([]byte, 100)...), "exceeds"},
		{"missing shape", withHeader("{'descr': '<f4', 'fortran_order': False, }"), `"shape"`},
		{"extra key", withHeader("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': True}"), "entries"},
		{"negative dim", withHeader("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }"), "integer"},
		{"no comma", withHeader("{'descr': '<f4', 'fortran_order': False, 'shape': (3), }"), "trailing comma"},
		{"structured", withHeader("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }"), "structured"},
		{"overflow", withHeader("{'descr': '<f4', 'fortran_order': False, 'shape': (2147483647, 2147483647, 2147483647), }"), "too large"},
		{"lying shape", withHeader("{'descr': '<f4', 'fortran_order': False, 'shape': (100000000,), }"), "data truncated"},
		{"not a dict", withHeader("['descr']"), "want '{'"},
		{"unterminated", withHeader("{'descr: '<f4'"), "want ':'"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			x, err := ReadNPY(bytes.NewReader(tc.data))
			if err == nil {
				t.Fatalf("read %v, want an error", x.Shape)
			}
			if !errors.Is(err, ErrFormat) {
				t.Errorf("error %q does not wrap ErrFormat", err)
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "model: ") {
				t.Errorf("error %q, want it to mention %q", err, tc.want)
			}
		})
	}
}

// TestNPYLyingHeaderAllocation checks that a header declaring 400 MB of data
// over a few bytes does not make ReadNPY allocate it.
func TestNPYLyingHeaderAllocation(t *testing.T) {
	dict := "{'descr': '<f4', 'fortran_order': False, 'shape': (100000000,), }"
	b := []byte(npyMagic + "\x01\x00")
	b = binary.LittleEndian.AppendUint16(b, uint16(len(dict)+1))
	b = append(append(b, dict...), '\n')
	b = append(b, make([]byte, 64)...)
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	_, err := ReadNPY(bytes.NewReader(b))
	runtime.ReadMemStats(&ms1)
	if err == nil {
		t.Fatal("no error")
	}
	if grew := ms1.TotalAlloc - ms0.TotalAlloc; grew > 8<<20 {
		t.Errorf("allocated %d bytes for a %d-byte input", grew, len(b))
	}
}

func TestWriteNPYRejectsBadTensor(t *testing.T) {
	for _, x := range []*nn.Tensor{nil, {Shape: []int{2, 2}, Data: make([]float32, 3)}, {Shape: []int{-1}}} {
		if err := WriteNPY(&bytes.Buffer{}, x); err == nil {
			t.Errorf("WriteNPY(%v): no error", x)
		}
	}
}

// WriteNPYInt64 writes a 1-D int64 array whose header ReadNPYHeader reads
// back (descr <i8, the length as the shape) followed by the values.
func TestWriteNPYInt64(t *testing.T) {
	v := []int64{0, -1, 1 << 40, 7}
	var b bytes.Buffer
	if err := WriteNPYInt64(&b, v); err != nil {
		t.Fatal(err)
	}
	h, err := ReadNPYHeader(&b)
	if err != nil || h.DType != "<i8" || len(h.Shape) != 1 || h.Shape[0] != len(v) || h.HeaderLen%64 != 0 {
		t.Fatalf("header %+v, %v", h, err)
	}
	if b.Len() != 8*len(v) {
		t.Fatalf("%d data bytes, want %d", b.Len(), 8*len(v))
	}
	for i, want := range v {
		if got := int64(binary.LittleEndian.Uint64(b.Bytes()[8*i:])); got != want {
			t.Errorf("value %d = %d, want %d", i, got, want)
		}
	}
}

// ReadNPYInt64 reads WriteNPYInt64's arrays back and refuses another dtype,
// another length and a truncated file with ErrFormat.
func TestReadNPYInt64(t *testing.T) {
	v := []int64{3, -4, 1 << 50}
	var b bytes.Buffer
	if err := WriteNPYInt64(&b, v); err != nil {
		t.Fatal(err)
	}
	full := b.Bytes()
	if got, err := ReadNPYInt64(bytes.NewReader(full), 3); err != nil || !slices.Equal(got, v) {
		t.Fatalf("round trip: %v, %v", got, err)
	}
	var f32 bytes.Buffer
	if err := WriteNPY(&f32, nn.FromData([]float32{1, 2, 3}, 3)); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		b []byte
		n int
	}{
		"float32 array": {f32.Bytes(), 3},
		"other length":  {full, 4},
		"truncated":     {full[:len(full)-5], 3},
		"not npy":       {[]byte("hello"), 3},
	} {
		if _, err := ReadNPYInt64(bytes.NewReader(tc.b), tc.n); !errors.Is(err, ErrFormat) {
			t.Errorf("%s: err = %v, want ErrFormat", name, err)
		}
	}
}
