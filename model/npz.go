package model

import (
	"archive/zip"
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/bitrun/bitrun/internal/atomicfile"
	"github.com/bitrun/bitrun/internal/ctxio"
	"github.com/bitrun/bitrun/internal/finite"
	"github.com/bitrun/bitrun/internal/regfile"
	"github.com/bitrun/bitrun/nn"
)

// FormatError reports a malformed .npz archive or one of its arrays. It wraps
// ErrFormat (errors.Is(err, ErrFormat) holds) and the underlying cause.
type FormatError struct {
	Path   string // the file, when known
	Member string // the archive member, when the fault is inside one
	Err    error  // what was wrong
}

func (e *FormatError) Error() string {
	msg := ErrFormat.Error()
	if e.Path != "" {
		msg += ": " + e.Path
	}
	if e.Member != "" {
		msg += fmt.Sprintf(": member %q", e.Member)
	}
	return msg + ": " + e.Err.Error()
}

// Unwrap returns ErrFormat and the cause.
func (e *FormatError) Unwrap() []error { return []error{ErrFormat, e.Err} }

// maxDeflateRatio bounds how much a deflate stream can expand (the format's
// limit is about 1032:1); a member declaring more is lying about its size.
const maxDeflateRatio = 1032

// npzMember is one checked member of an archive.
type npzMember struct {
	key string // the member name without ".npy"
	f   *zip.File
}

// npzMembers opens an archive and checks every member's name, method and
// declared sizes before any data is read.
func npzMembers(r io.ReaderAt, size int64) ([]npzMember, error) {
	if size < 0 {
		return nil, &FormatError{Err: fmt.Errorf("negative archive size %d", size)}
	}
	zr, err := zip.NewReader(r, size)
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
		// Member names never become file paths here, so "insecure" names
		// (absolute, with "..") are only checked like any other key.
		return nil, &FormatError{Err: err}
	}
	members := make([]npzMember, 0, len(zr.File))
	seen := make(map[string]bool, len(zr.File))
	var spans []span
	for _, f := range zr.File {
		key, ok := strings.CutSuffix(f.Name, ".npy")
		if !ok || key == "" {
			return nil, &FormatError{Member: f.Name, Err: errors.New("not an .npy array (want NAME.npy)")}
		}
		if seen[key] {
			return nil, &FormatError{Member: f.Name, Err: errors.New("duplicate member")}
		}
		seen[key] = true
		if err := checkMemberSizes(f, size); err != nil {
			return nil, &FormatError{Member: f.Name, Err: err}
		}
		off, _ := f.DataOffset() // checked by checkMemberSizes
		spans = append(spans, span{off, off + int64(f.CompressedSize64), f.Name})
		members = append(members, npzMember{key: key, f: f})
	}
	// Members sharing data (an "overlapping" zip bomb) would multiply what
	// a small archive can make ReadNPZ allocate.
	sort.Slice(spans, func(i, j int) bool { return spans[i].start < spans[j].start })
	for i := 1; i < len(spans); i++ {
		if spans[i].start < spans[i-1].end {
			return nil, &FormatError{Member: spans[i].name, Err: fmt.Errorf("data overlaps member %q", spans[i-1].name)}
		}
	}
	return members, nil
}

// span is the byte range of a member's stored data.
type span struct {
	start, end int64
	name       string
}

func checkMemberSizes(f *zip.File, size int64) error {
	off, err := f.DataOffset()
	if err != nil {
		return err
	}
	csize, usize := f.CompressedSize64, f.UncompressedSize64
	if off < 0 || csize > uint64(size) || uint64(off) > uint64(size)-csize {
		return fmt.Errorf("data (%d bytes at offset %d) runs past the end of the %d-byte archive", csize, off, size)
	}
	switch f.Method {
	case zip.Store:
		if usize != csize {
			return fmt.Errorf("stored member declares %d bytes but holds %d", usize, csize)
		}
	case zip.Deflate:
		if usize > csize*maxDeflateRatio+1024 {
			return fmt.Errorf("deflated member declares %d bytes from %d compressed bytes (impossible ratio)", usize, csize)
		}
	default:
		return fmt.Errorf("unsupported compression method %d (want stored or deflated)", f.Method)
	}
	return nil
}

// openMember opens m and parses its .npy header, checking the declared data
// size against the member's size. The caller closes rc.
func openMember(m npzMember) (h NPYHeader, br *bufio.Reader, rc io.ReadCloser, err error) {
	rc, err = m.f.Open()
	if err != nil {
		return h, nil, nil, err
	}
	br = bufio.NewReaderSize(rc, 64<<10)
	if h, err = readNPYHeader(br); err != nil {
		rc.Close()
		return h, nil, nil, err
	}
	if err = h.checkFloat32(); err != nil {
		rc.Close()
		return h, nil, nil, err
	}
	usize := m.f.UncompressedSize64
	if usize < uint64(h.HeaderLen) || int64(usize)-h.HeaderLen != h.DataLen() {
		rc.Close()
		return h, nil, nil, fmt.Errorf("shape %v needs %d data bytes after the %d-byte header, the member holds %d bytes in all",
			h.Shape, h.DataLen(), h.HeaderLen, usize)
	}
	return h, br, rc, nil
}

// ReadNPZ parses an .npz archive (zip of .npy, stored or deflated) of float32
// arrays into Params keyed by the archive member names without ".npy".
//
// Every error about the content is a *FormatError wrapping ErrFormat and
// naming the member. Before allocating an array, ReadNPZ checks the size its
// header declares against the member's size, the member's size against the
// archive, and that no two members share data, so a hostile archive can make
// it allocate at most about 1032 times its own size (the deflate limit); CRCs
// are verified.
func ReadNPZ(r io.ReaderAt, size int64) (Params, error) {
	members, err := npzMembers(r, size)
	if err != nil {
		return nil, err
	}
	params := make(Params, len(members))
	for _, m := range members {
		t, err := readMember(m)
		if err != nil {
			return nil, &FormatError{Member: m.f.Name, Err: err}
		}
		if err := checkFinite(m.key, t.Data); err != nil {
			return nil, &FormatError{Member: m.f.Name, Err: err}
		}
		params[m.key] = t
	}
	return params, nil
}

// checkFinite fails with ErrNonFinite at the first NaN or ±Inf of data.
func checkFinite(key string, data []float32) error {
	if i := finite.Index(data); i >= 0 {
		return fmt.Errorf("%w: parameter %q holds %v at index %d", ErrNonFinite, key, data[i], i)
	}
	return nil
}

func readMember(m npzMember) (*nn.Tensor, error) {
	h, br, rc, err := openMember(m)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	// readNPYData reads to EOF, which makes the zip reader verify the CRC.
	return readNPYData(br, h, h.DataLen())
}

// ReadNPZShapes returns the shape of every array in an .npz archive without
// reading the data: only the headers are parsed (and checked like ReadNPZ
// does), so it is cheap even for multi-gigabyte checkpoints. Data CRCs are
// not verified.
func ReadNPZShapes(r io.ReaderAt, size int64) (map[string][]int, error) {
	members, err := npzMembers(r, size)
	if err != nil {
		return nil, err
	}
	shapes := make(map[string][]int, len(members))
	for _, m := range members {
		h, _, rc, err := openMember(m)
		if err != nil {
			return nil, &FormatError{Member: m.f.Name, Err: err}
		}
		rc.Close()
		shapes[m.key] = append([]int{}, h.Shape...)
	}
	return shapes, nil
}

// LoadNPZ reads the .npz file at path (see ReadNPZ for the checks and limits).
func LoadNPZ(path string) (Params, error) {
	var params Params
	err := withFile(path, func(f *os.File, size int64) (err error) {
		params, err = ReadNPZ(f, size)
		return err
	})
	return params, err
}

// LoadNPZShapes is ReadNPZShapes on the file at path.
func LoadNPZShapes(path string) (map[string][]int, error) {
	var shapes map[string][]int
	err := withFile(path, func(f *os.File, size int64) (err error) {
		shapes, err = ReadNPZShapes(f, size)
		return err
	})
	return shapes, err
}

func withFile(path string, fn func(f *os.File, size int64) error) error {
	f, err := regfile.Open(path)
	if err != nil {
		return fmt.Errorf("model: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("model: %w", err)
	}
	err = fn(f, st.Size()) // regfile.Open refused anything but a regular file
	if fe, ok := errors.AsType[*FormatError](err); ok && fe.Path == "" {
		fe.Path = path
	}
	return err
}

// npzTime is the modification time written for every member, so that the
// same weights always give the same bytes (and the same SHA-256).
var npzTime = time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)

// WriteNPZ writes params as an .npz archive: one stored (uncompressed)
// version 1.0 .npy member per tensor, in sorted key order, with fixed
// timestamps, so equal params give identical bytes.
func WriteNPZ(w io.Writer, params Params) error {
	for _, name := range params.Names() {
		if name == "" {
			return errors.New("model: npz: empty parameter name")
		}
		if err := checkTensor(params[name]); err != nil {
			return fmt.Errorf("model: npz: %s: %w", name, err)
		}
	}
	zw := zip.NewWriter(w)
	for _, name := range params.Names() {
		fh := &zip.FileHeader{Name: name + ".npy", Method: zip.Store, Modified: npzTime}
		fh.SetMode(0o644)
		mw, err := zw.CreateHeader(fh)
		if err != nil {
			return fmt.Errorf("model: npz: %s: %w", name, err)
		}
		if err := writeNPY(mw, params[name]); err != nil {
			return fmt.Errorf("model: npz: %s: %w", name, err)
		}
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("model: npz: %w", err)
	}
	return nil
}

// SaveNPZ writes params to path atomically: the archive goes to a temporary
// file in the same folder, which is synced and then renamed over path, so a
// crash leaves either the old file or the complete new one.
func SaveNPZ(path string, params Params) error {
	return SaveNPZContext(context.Background(), path, params)
}

// SaveNPZContext is SaveNPZ that gives up when ctx is done (checked between
// writes of at most 1 MiB), removing the temporary file and returning an
// error wrapping ctx.Err(); path is then untouched.
func SaveNPZContext(ctx context.Context, path string, params Params) error {
	return writeFileAtomic(path, func(w io.Writer) error {
		return WriteNPZ(ctxio.Writer(ctx, w), params)
	})
}

// writeFileAtomic writes a file through write into a pending file next to
// path (internal/atomicfile: mode 0644, synced, renamed, folder synced). On
// any error the temporary file is removed and path is untouched.
func writeFileAtomic(path string, write func(w io.Writer) error) error {
	f, err := atomicfile.Create(path)
	if err != nil {
		return fmt.Errorf("model: save %s: %w", path, err)
	}
	defer f.Cleanup()
	bw := bufio.NewWriterSize(f, 1<<20)
	if err := write(bw); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("model: save %s: %w", path, err)
	}
	if err := f.Commit(); err != nil {
		return fmt.Errorf("model: save: %w", err)
	}
	return nil
}
