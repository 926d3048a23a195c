package data

import (
	"bufio"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/bitrun/bitrun/internal/regfile"
)

// FashionMNISTClasses are the Fashion-MNIST class names, in label order.
var FashionMNISTClasses = []string{
	"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
	"Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
}

// maxIDXBytes caps the payload of one IDX file (well above MNIST's 47 MB).
const maxIDXBytes = 1 << 31

// idxSet is an in-memory IDX dataset (MNIST layout: n×rows×cols uint8 images,
// uint8 labels).
type idxSet struct {
	pix        []byte
	n          int
	rows, cols int
	labels     []uint8
	classes    []string
}

func (d *idxSet) Len() int          { return d.n }
func (d *idxSet) Classes() []string { return d.classes }
func (d *idxSet) Label(i int) int   { return int(d.labels[i]) }

// Image returns example i as an *image.Gray that shares the dataset's memory:
// it must not be modified.
func (d *idxSet) Image(i int) (image.Image, error) {
	if i < 0 || i >= d.n {
		return nil, fmt.Errorf("data: index %d out of range [0, %d)", i, d.n)
	}
	return d.gray(i), nil
}

func (d *idxSet) gray(i int) *image.Gray {
	sz := d.rows * d.cols
	return &image.Gray{Pix: d.pix[i*sz : (i+1)*sz : (i+1)*sz], Stride: d.cols, Rect: image.Rect(0, 0, d.cols, d.rows)}
}

// idxFile finds PREFIX-KIND-ubyte or PREFIX-KIND-ubyte.gz in dir; "" if none.
func idxFile(dir, prefix, kind string) string {
	for _, name := range []string{prefix + "-" + kind + "-ubyte", prefix + "-" + kind + "-ubyte.gz", prefix + "-" + strings.Replace(kind, "-idx", ".idx", 1) + "-ubyte"} {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			return p
		}
	}
	return ""
}

// OpenIDX reads an IDX image file (idx3 ubyte) and its label file (idx1
// ubyte), each optionally gzipped, and returns them as an in-memory dataset.
// classes names the labels; nil means "0".."9" (or up to the largest label).
// Every structural problem (bad magic, mismatched counts, truncation, labels
// outside classes) is an error wrapping ErrBadDataset.
func OpenIDX(imagesPath, labelsPath string, classes []string) (Dataset, error) {
	dims, pix, err := readIDX(imagesPath, 3)
	if err != nil {
		return nil, err
	}
	ldims, labels, err := readIDX(labelsPath, 1)
	if err != nil {
		return nil, err
	}
	if dims[0] != ldims[0] {
		return nil, fmt.Errorf("%w: %s has %d images but %s has %d labels", ErrBadDataset, imagesPath, dims[0], labelsPath, ldims[0])
	}
	maxLabel := -1
	for _, l := range labels {
		maxLabel = max(maxLabel, int(l))
	}
	if classes == nil {
		for c := 0; c < max(10, maxLabel+1); c++ {
			classes = append(classes, strconv.Itoa(c))
		}
	}
	if maxLabel >= len(classes) {
		return nil, fmt.Errorf("%w: %s has label %d but only %d classes are named", ErrBadDataset, labelsPath, maxLabel, len(classes))
	}
	return &idxSet{pix: pix, n: dims[0], rows: dims[1], cols: dims[2], labels: labels, classes: classes}, nil
}

// readIDX parses an unsigned-byte IDX file with the given number of
// dimensions and returns its dimensions and payload.
func readIDX(path string, ndim int) ([]int, []byte, error) {
	f, err := regfile.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("data: %w", err)
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 1<<16)
	var r io.Reader = br
	if magic, err := br.Peek(2); err == nil && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: %s: %w", ErrBadDataset, path, err)
		}
		defer zr.Close()
		r = zr
	}
	hdr := make([]byte, 4+4*ndim)
	if _, err := io.ReadFull(r, hdr[:4]); err != nil {
		return nil, nil, fmt.Errorf("%w: %s: truncated header: %w", ErrBadDataset, path, err)
	}
	if hdr[0] != 0 || hdr[1] != 0 || hdr[2] != 0x08 || int(hdr[3]) != ndim {
		return nil, nil, fmt.Errorf("%w: %s: bad magic %02x%02x%02x%02x, want 000008%02x (unsigned bytes, %d dimensions)",
			ErrBadDataset, path, hdr[0], hdr[1], hdr[2], hdr[3], ndim, ndim)
	}
	if _, err := io.ReadFull(r, hdr[4:]); err != nil {
		return nil, nil, fmt.Errorf("%w: %s: truncated header: %w", ErrBadDataset, path, err)
	}
	dims := make([]int, ndim)
	total := int64(1)
	for i := range dims {
		d := binary.BigEndian.Uint32(hdr[4+4*i:])
		if d == 0 && i > 0 {
			return nil, nil, fmt.Errorf("%w: %s: dimension %d is zero", ErrBadDataset, path, i)
		}
		dims[i] = int(d)
		total *= int64(d)
		if total > maxIDXBytes {
			return nil, nil, fmt.Errorf("%w: %s: dimensions %v exceed %d bytes", ErrBadDataset, path, dims[:i+1], int64(maxIDXBytes))
		}
	}
	// Grow in chunks so that a lying header cannot force a huge allocation.
	buf := make([]byte, 0, min(total, 64<<20))
	for int64(len(buf)) < total {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		end := min(int64(cap(buf)), total)
		n, err := io.ReadFull(r, buf[len(buf):end])
		buf = buf[:len(buf)+n]
		if err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
				return nil, nil, fmt.Errorf("%w: %s: truncated: header %v promises %d bytes of data, got %d", ErrBadDataset, path, dims, total, len(buf))
			}
			return nil, nil, fmt.Errorf("%w: %s: %w", ErrBadDataset, path, err)
		}
	}
	var one [1]byte
	if n, _ := io.ReadFull(r, one[:]); n != 0 {
		return nil, nil, fmt.Errorf("%w: %s: trailing data after %d bytes promised by header %v", ErrBadDataset, path, total, dims)
	}
	return dims, buf, nil
}

// readClassFile reads one class name per line (blank lines at the end are
// ignored).
func readClassFile(path string) ([]string, error) {
	b, err := regfile.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	lines := strings.Split(strings.TrimRight(strings.ReplaceAll(string(b), "\r\n", "\n"), "\n \t"), "\n")
	for i := range lines {
		lines[i] = strings.TrimSpace(lines[i])
		if lines[i] == "" {
			return nil, fmt.Errorf("%w: %s: line %d is empty", ErrBadDataset, path, i+1)
		}
	}
	return lines, nil
}

// idxClasses picks class names for an IDX folder: classes.txt or labels.txt
// in the folder, Fashion-MNIST names when the path mentions "fashion", else
// nil (digits).
func idxClasses(dir string) ([]string, error) {
	for _, name := range []string{"classes.txt", "labels.txt"} {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err == nil {
			return readClassFile(p)
		}
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		abs = dir
	}
	if strings.Contains(strings.ToLower(abs), "fashion") {
		return append([]string(nil), FashionMNISTClasses...), nil
	}
	return nil, nil
}
