package model

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bitrun/bitrun/nn"
)

func tinyParams(t testing.TB, classes int, seed int64) (Config, Params) {
	t.Helper()
	cfg, err := Arch("tiny", classes)
	if err != nil {
		t.Fatal(err)
	}
	p := Init(cfg, seed)
	// Make every tensor non-trivial, including special values, so that a
	// round trip is a real test.
	for _, k := range p.Names() {
		for i := range p[k].Data {
			if p[k].Data[i] == 0 || p[k].Data[i] == 1 {
				p[k].Data[i] = float32(i%7) - 3.25
			}
		}
	}
	// Finite special values only: ReadNPZ refuses NaN and ±Inf
	// (TestLoadRefusesNonFinite).
	p[HeadBias].Data[0] = -math.MaxFloat32
	p[HeadBias].Data[1] = math.Float32frombits(0x00000001) // smallest subnormal
	p[HeadBias].Data[2] = float32(math.Copysign(0, -1))
	return cfg, p
}

func TestSaveLoadBitIdentical(t *testing.T) {
	_, p := tinyParams(t, 10, 3)
	dir := t.TempDir()
	path := filepath.Join(dir, "m.npz")
	if err := SaveNPZ(path, p); err != nil {
		t.Fatal(err)
	}
	got, err := LoadNPZ(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(p) {
		t.Fatalf("%d tensors, want %d", len(got), len(p))
	}
	for _, k := range p.Names() {
		if got[k] == nil {
			t.Fatalf("missing %s", k)
		}
		assertBitIdentical(t, k, got[k], p[k])
	}
	// Deterministic bytes: the same params saved again give the same file.
	path2 := filepath.Join(dir, "again.npz")
	if err := SaveNPZ(path2, got); err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(path)
	b, _ := os.ReadFile(path2)
	if !bytes.Equal(a, b) {
		t.Error("saving the same params twice gave different bytes")
	}
	// Members are in sorted order and stored.
	zr, err := zip.NewReader(bytes.NewReader(a), int64(len(a)))
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range zr.File {
		if f.Method != zip.Store {
			t.Errorf("%s: method %d, want stored", f.Name, f.Method)
		}
		if i > 0 && zr.File[i-1].Name >= f.Name {
			t.Errorf("members out of order: %s before %s", zr.File[i-1].Name, f.Name)
		}
	}
	assertNoTemp(t, dir)
}

func assertNoTemp(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".tmp") {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
}

func TestSaveNPZAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "m.npz")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	bad := Params{"a": nn.New(2), "b": {Shape: []int{3}, Data: make([]float32, 2)}}
	err := SaveNPZ(path, bad)
	if err == nil || !strings.Contains(err.Error(), "b:") {
		t.Fatalf("SaveNPZ of a malformed tensor: %v, want an error naming b", err)
	}
	if old, _ := os.ReadFile(path); string(old) != "old" {
		t.Errorf("failed save changed the file to %q", old)
	}
	assertNoTemp(t, dir)

	// A writer failing midway (here: the folder vanishes) leaves nothing behind.
	if err := SaveNPZ(filepath.Join(dir, "missing", "m.npz"), Params{"a": nn.New(1)}); err == nil {
		t.Error("SaveNPZ into a missing folder: no error")
	}
	// Success replaces the old file.
	if err := SaveNPZ(path, Params{"a": nn.FromData([]float32{7}, 1)}); err != nil {
		t.Fatal(err)
	}
	got, err := LoadNPZ(path)
	if err != nil || got["a"].Data[0] != 7 {
		t.Fatalf("after replace: %v %v", got, err)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want 0644", st.Mode().Perm())
	}
	assertNoTemp(t, dir)
}

func TestSaveNPZContextCanceled(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "m.npz")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := SaveNPZContext(ctx, path, Params{"a": nn.New(4)})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("SaveNPZContext after cancel: %v, want context.Canceled", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("canceled save left %s: %v", path, err)
	}
	assertNoTemp(t, dir)
}

// TestReadNPZFromNumPy reads archives numpy.savez and numpy.savez_compressed wrote.
func TestReadNPZFromNumPy(t *testing.T) {
	for _, name := range []string{"stored.npz", "deflated.npz"} {
		t.Run(name, func(t *testing.T) {
			p, err := LoadNPZ(filepath.Join("testdata", name))
			if err != nil {
				t.Fatal(err)
			}
			if len(p) != 2 || !nn.SameShape(p["w"].Shape, []int{2, 3}) || !nn.SameShape(p["b"].Shape, []int{3}) {
				t.Fatalf("got %v", p.Names())
			}
			if p["b"].Data[0] != 1 || p["b"].Data[1] != -2 || p["b"].Data[2] != 3 {
				t.Errorf("b = %v", p["b"].Data)
			}
			w := readNPYFile(t, filepath.Join("testdata", "npy", "f4_2x3.npy"))
			assertBitIdentical(t, "w", p["w"], w)
		})
	}
}

// zipOf builds an archive from raw members; sizes < 0 are computed.
type rawMember struct {
	name         string
	data         []byte
	method       uint16
	usize, csize int64 // declared sizes; -1: the real ones
}

func zipOf(t *testing.T, members ...rawMember) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, m := range members {
		fh := &zip.FileHeader{Name: m.name, Method: m.method, CRC32: crc32.ChecksumIEEE(m.data)}
		fh.UncompressedSize64 = uint64(len(m.data))
		fh.CompressedSize64 = uint64(len(m.data))
		if m.usize >= 0 {
			fh.UncompressedSize64 = uint64(m.usize)
		}
		if m.csize >= 0 {
			fh.CompressedSize64 = uint64(m.csize)
		}
		w, err := zw.CreateRaw(fh)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(m.data)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func npyBytes(t *testing.T, x *nn.Tensor) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteNPY(&buf, x); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestReadNPZRejects(t *testing.T) {
	file := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	good := npyBytes(t, nn.FromData([]float32{1, 2, 3}, 3))
	tests := []struct {
		name   string
		data   []byte
		member string // member the error must name ("" for archive-level faults)
		want   string
	}{
		{"not a zip", []byte("definitely not a zip archive"), "", "zip"},
		{"int64 member", file("mixed_dtype.npz"), "steps.npy", `unsupported dtype "<i8"`},
		{"lying header", file("lying_header.npz"), "w.npy", "needs 252 data bytes"},
		{"not npy", zipOf(t, rawMember{"w.npy", good, zip.Store, -1, -1}, rawMember{"README", []byte("hi"), zip.Store, -1, -1}), "README", "not an .npy"},
		{"duplicate", zipOf(t, rawMember{"w.npy", good, zip.Store, -1, -1}, rawMember{"w.npy", good, zip.Store, -1, -1}), "w.npy", "duplicate"},
		{"stored size lie", zipOf(t, rawMember{"w.npy", good, zip.Store, 1 << 40, -1}), "w.npy", "stored member declares"},
		{"deflate ratio lie", zipOf(t, rawMember{"w.npy", []byte{3, 0}, zip.Deflate, 1 << 40, -1}), "w.npy", "impossible ratio"},
		{"past the end", zipOf(t, rawMember{"w.npy", good, zip.Store, 1 << 20, 1 << 20}), "w.npy", "past the end"},
		{"bzip2", zipOf(t, rawMember{"w.npy", good, 12, -1, -1}), "w.npy", "compression method 12"},
		{"bad crc", flipLastDataByte(t, zipOf(t, rawMember{"w.npy", good, zip.Store, -1, -1}), len(good)), "w.npy", "checksum"},
		{"overlapping members", overlappingZip(t, good), "b.npy", "overlaps"},
		{"not npy data", zipOf(t, rawMember{"w.npy", []byte("PK not an array at all"), zip.Store, -1, -1}), "w.npy", "bad magic"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ReadNPZ(bytes.NewReader(tc.data), int64(len(tc.data)))
			if err == nil {
				t.Fatalf("read %v, want an error", p.Names())
			}
			var fe *FormatError
			if !errors.Is(err, ErrFormat) || !errors.As(err, &fe) {
				t.Fatalf("error %q is not a *FormatError wrapping ErrFormat", err)
			}
			if fe.Member != tc.member {
				t.Errorf("error names member %q, want %q (%v)", fe.Member, tc.member, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to mention %q", err, tc.want)
			}
		})
	}
}

// overlappingZip builds by hand a stored archive whose central directory lists
// two members, a.npy and b.npy, that point at the same local entry and data.
func overlappingZip(t *testing.T, data []byte) []byte {
	le := binary.LittleEndian
	crc := crc32.ChecksumIEEE(data)
	var b []byte
	b = le.AppendUint32(b, 0x04034b50)
	b = le.AppendUint16(b, 20)
	b = le.AppendUint16(b, 0) // flags
	b = le.AppendUint16(b, 0) // stored
	b = le.AppendUint32(b, 0) // time, date
	b = le.AppendUint32(b, crc)
	b = le.AppendUint32(b, uint32(len(data)))
	b = le.AppendUint32(b, uint32(len(data)))
	b = le.AppendUint16(b, 5)
	b = le.AppendUint16(b, 0)
	b = append(b, "a.npy"...)
	b = append(b, data...)
	cdStart := len(b)
	for _, name := range []string{"a.npy", "b.npy"} {
		b = le.AppendUint32(b, 0x02014b50)
		b = le.AppendUint16(b, 20)
		b = le.AppendUint16(b, 20)
		b = le.AppendUint16(b, 0)
		b = le.AppendUint16(b, 0)
		b = le.AppendUint32(b, 0)
		b = le.AppendUint32(b, crc)
		b = le.AppendUint32(b, uint32(len(data)))
		b = le.AppendUint32(b, uint32(len(data)))
		b = le.AppendUint16(b, uint16(len(name)))
		b = le.AppendUint16(b, 0) // extra
		b = le.AppendUint16(b, 0) // comment
		b = le.AppendUint16(b, 0) // disk
		b = le.AppendUint16(b, 0) // internal attributes
		b = le.AppendUint32(b, 0) // external attributes
		b = le.AppendUint32(b, 0) // local header offset: both at 0
		b = append(b, name...)
	}
	cdEnd := len(b)
	b = le.AppendUint32(b, 0x06054b50)
	b = le.AppendUint32(b, 0)
	b = le.AppendUint16(b, 2)
	b = le.AppendUint16(b, 2)
	b = le.AppendUint32(b, uint32(cdEnd-cdStart))
	b = le.AppendUint32(b, uint32(cdStart))
	b = le.AppendUint16(b, 0)
	if _, err := zip.NewReader(bytes.NewReader(b), int64(len(b))); err != nil {
		t.Fatalf("hand-made archive: %v", err)
	}
	return b
}

// flipLastDataByte corrupts the last data byte of the single stored member of
// an archive whose member data is n bytes long.
func flipLastDataByte(t *testing.T, archive []byte, n int) []byte {
	zr, err := zip.NewReader(bytes.NewReader(archive), int64(len(archive)))
	if err != nil {
		t.Fatal(err)
	}
	off, err := zr.File[0].DataOffset()
	if err != nil {
		t.Fatal(err)
	}
	out := append([]byte(nil), archive...)
	out[off+int64(n)-1] ^= 0x40
	return out
}

// TestReadNPZTruncatedAndCorrupt truncates a valid archive at every length
// and flips every byte: no panic, and truncation is always an error.
func TestReadNPZTruncatedAndCorrupt(t *testing.T) {
	for _, name := range []string{"stored.npz", "deflated.npz"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		for n := 0; n < len(data); n++ {
			if _, err := ReadNPZ(bytes.NewReader(data[:n]), int64(n)); err == nil {
				t.Fatalf("%s truncated to %d bytes: no error", name, n)
			} else if !errors.Is(err, ErrFormat) {
				t.Fatalf("%s truncated to %d bytes: %v does not wrap ErrFormat", name, n, err)
			}
		}
		for i := range data {
			bad := append([]byte(nil), data...)
			bad[i] ^= 0xff
			p, err := ReadNPZ(bytes.NewReader(bad), int64(len(bad)))
			if err != nil && !errors.Is(err, ErrFormat) {
				t.Fatalf("%s with byte %d flipped: %v does not wrap ErrFormat", name, i, err)
			}
			for k, v := range p {
				if checkTensor(v) != nil {
					t.Fatalf("%s with byte %d flipped: %s is inconsistent", name, i, k)
				}
			}
		}
	}
}

func TestLoadNPZErrorsNameTheFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "junk.npz")
	os.WriteFile(path, []byte("junk"), 0o644)
	_, err := LoadNPZ(path)
	if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), path) {
		t.Errorf("LoadNPZ(junk): %v, want ErrFormat naming the path", err)
	}
	_, err = LoadNPZ(filepath.Join(dir, "none.npz"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("LoadNPZ(missing): %v, want ErrNotExist", err)
	}
	if _, err = LoadNPZ(dir); err == nil {
		t.Error("LoadNPZ(folder): no error")
	}
}

func TestReadNPZShapes(t *testing.T) {
	cfg, p := tinyParams(t, 5, 1)
	var buf bytes.Buffer
	if err := WriteNPZ(&buf, p); err != nil {
		t.Fatal(err)
	}
	shapes, err := ReadNPZShapes(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	if len(shapes) != len(cfg.Spec()) {
		t.Fatalf("%d shapes, want %d", len(shapes), len(cfg.Spec()))
	}
	for _, s := range cfg.Spec() {
		if !nn.SameShape(shapes[s.Name], s.Shape) {
			t.Errorf("%s: %v, want %v", s.Name, shapes[s.Name], s.Shape)
		}
	}
	if err := CheckShapes(cfg, shapes); err != nil {
		t.Error(err)
	}
}
