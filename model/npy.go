package model

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/bitrun/bitrun/nn"
)

// The .npy format (NumPy's NEP 1): the magic "\x93NUMPY", a major and minor
// version byte, the header length (uint16 little-endian in version 1, uint32
// in versions 2 and 3), then an ASCII (version 3: UTF-8) Python dict literal
// with the keys 'descr', 'fortran_order' and 'shape', padded with spaces and a
// final newline so that the data starts on an aligned offset. The data follows
// in C order.

const (
	npyMagic = "\x93NUMPY"
	// npyDType is the only element type a checkpoint may hold: little-endian float32.
	npyDType = "<f4"
	// maxNPYHeader bounds the header a reader accepts. NumPy itself refuses
	// headers over 10000 bytes by default; a float32 array needs far less.
	maxNPYHeader = 1 << 16
	// maxNPYDims bounds the rank of an array.
	maxNPYDims = 32
	// npyAlign is the alignment of the data offset that writers pad to.
	npyAlign = 64
	// readChunk is how many bytes are decoded at a time.
	readChunk = 1 << 20
)

// NPYHeader is the parsed header of one .npy array.
type NPYHeader struct {
	Major, Minor int    // format version
	DType        string // the 'descr' entry, e.g. "<f4"
	Fortran      bool   // the 'fortran_order' entry
	Shape        []int  // the 'shape' entry; empty for a scalar
	HeaderLen    int64  // bytes before the data: magic, version, length and dict
}

// DataLen is the number of data bytes the header declares for float32
// elements, or -1 when that does not fit in an int64.
func (h NPYHeader) DataLen() int64 {
	n := int64(4)
	for _, d := range h.Shape {
		if d != 0 && n > math.MaxInt64/int64(d) {
			return -1
		}
		n *= int64(d)
	}
	return n
}

// ReadNPYHeader parses the header of an .npy stream and leaves r positioned at
// the first data byte. Errors wrap ErrFormat. It reads at most 64 KiB of header
// whatever the stream declares.
func ReadNPYHeader(r io.Reader) (NPYHeader, error) {
	h, err := readNPYHeader(r)
	if err != nil {
		return h, fmt.Errorf("%w: %w", ErrFormat, err)
	}
	return h, nil
}

// npyErr is an error inside an .npy array; the caller wraps ErrFormat and,
// in an archive, the member name.
func npyErr(format string, args ...any) error { return fmt.Errorf(format, args...) }

func readNPYHeader(r io.Reader) (NPYHeader, error) {
	var h NPYHeader
	var pre [10]byte
	if _, err := io.ReadFull(r, pre[:8]); err != nil {
		return h, npyErr("truncated before the version: %v", err)
	}
	if string(pre[:6]) != npyMagic {
		return h, npyErr("bad magic %q (not an .npy array)", pre[:6])
	}
	h.Major, h.Minor = int(pre[6]), int(pre[7])
	var hlen int64
	switch h.Major {
	case 1:
		if _, err := io.ReadFull(r, pre[8:10]); err != nil {
			return h, npyErr("truncated header length: %v", err)
		}
		hlen = int64(binary.LittleEndian.Uint16(pre[8:10]))
		h.HeaderLen = 10 + hlen
	case 2, 3:
		var l [4]byte
		if _, err := io.ReadFull(r, l[:]); err != nil {
			return h, npyErr("truncated header length: %v", err)
		}
		hlen = int64(binary.LittleEndian.Uint32(l[:]))
		h.HeaderLen = 12 + hlen
	default:
		return h, npyErr("unsupported format version %d.%d", h.Major, h.Minor)
	}
	if hlen > maxNPYHeader {
		return h, npyErr("header of %d bytes exceeds the %d-byte limit", hlen, maxNPYHeader)
	}
	buf := make([]byte, hlen)
	if _, err := io.ReadFull(r, buf); err != nil {
		return h, npyErr("header declares %d bytes: truncated: %v", hlen, err)
	}
	dict, err := parsePyDict(strings.TrimRight(string(buf), " \t\r\n\x00"))
	if err != nil {
		return h, npyErr("header: %v", err)
	}
	for _, key := range []string{"descr", "fortran_order", "shape"} {
		if _, ok := dict[key]; !ok {
			return h, npyErr("header has no %q entry", key)
		}
	}
	if len(dict) != 3 {
		return h, npyErr("header has %d entries, want descr, fortran_order and shape", len(dict))
	}
	var ok bool
	if h.DType, ok = dict["descr"].(string); !ok {
		return h, npyErr("header: descr is %v, want a simple type string (structured arrays are not supported)", dict["descr"])
	}
	if h.Fortran, ok = dict["fortran_order"].(bool); !ok {
		return h, npyErr("header: fortran_order is %v, want True or False", dict["fortran_order"])
	}
	dims, ok := dict["shape"].([]int)
	if !ok {
		return h, npyErr("header: shape is %v, want a tuple of integers", dict["shape"])
	}
	if len(dims) > maxNPYDims {
		return h, npyErr("shape has %d dimensions (limit %d)", len(dims), maxNPYDims)
	}
	h.Shape = dims
	return h, nil
}

// multiDim reports whether more than one dimension exceeds 1, that is whether
// C and Fortran order differ.
func (h NPYHeader) multiDim() bool {
	n := 0
	for _, d := range h.Shape {
		if d > 1 {
			n++
		}
	}
	return n > 1
}

// checkFloat32 reports why h cannot be read as a checkpoint tensor.
func (h NPYHeader) checkFloat32() error {
	if h.DType != npyDType {
		return npyErr("unsupported dtype %q (want little-endian float32 %q)", h.DType, npyDType)
	}
	if h.Fortran && h.multiDim() {
		return npyErr("fortran_order is True for shape %v (want C order)", h.Shape)
	}
	if h.DataLen() < 0 || h.DataLen() > math.MaxInt {
		return npyErr("shape %v is too large", h.Shape)
	}
	return nil
}

// ReadNPY reads one .npy array of little-endian float32 values. Any other
// dtype or Fortran order is an error; every error wraps ErrFormat.
//
// The stream's length is unknown to ReadNPY, so it grows its buffer as data
// arrives instead of trusting the header: a lying header costs at most about
// twice the bytes actually supplied. Trailing bytes after the data are an error.
func ReadNPY(r io.Reader) (*nn.Tensor, error) {
	br := bufio.NewReader(r)
	h, err := readNPYHeader(br)
	if err == nil {
		var t *nn.Tensor
		if t, err = readNPYData(br, h, -1); err == nil {
			return t, nil
		}
	}
	return nil, fmt.Errorf("%w: npy: %w", ErrFormat, err)
}

// readNPYData reads the data described by h. When avail >= 0 it is the exact
// number of data bytes r holds, checked against the header before anything is
// allocated; otherwise the buffer grows with the data actually read.
func readNPYData(r io.Reader, h NPYHeader, avail int64) (*nn.Tensor, error) {
	if err := h.checkFloat32(); err != nil {
		return nil, err
	}
	want := h.DataLen()
	if avail >= 0 && avail != want {
		return nil, npyErr("shape %v needs %d data bytes, the array holds %d", h.Shape, want, avail)
	}
	n := int(want / 4)
	var data []float32
	if avail >= 0 {
		data = make([]float32, n)
	} else {
		data = make([]float32, 0, min(n, readChunk/4))
	}
	buf := make([]byte, min(want, readChunk))
	for done := 0; done < n; {
		k := min(n-done, len(buf)/4)
		if _, err := io.ReadFull(r, buf[:4*k]); err != nil {
			return nil, npyErr("data truncated after %d of %d bytes (shape %v): %v", 4*done, want, h.Shape, err)
		}
		if avail < 0 {
			data = slices.Grow(data, k)[:done+k]
		}
		dst := data[done : done+k]
		for i := range dst {
			dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(buf[4*i:]))
		}
		done += k
	}
	var one [1]byte
	if m, err := r.Read(one[:]); m > 0 {
		return nil, npyErr("trailing bytes after %d data bytes (shape %v)", want, h.Shape)
	} else if err != nil && !errors.Is(err, io.EOF) {
		return nil, npyErr("after the data: %v", err)
	}
	shape := h.Shape
	if shape == nil {
		shape = []int{}
	}
	return nn.FromData(data, shape...), nil
}

// npyHeaderBytes returns the full header (magic to newline) for an array of
// dtype descr ("<f4", "<i8") and the given shape: version 1.0 unless the
// dict needs more than 65535 bytes.
func npyHeaderBytes(descr string, shape []int) []byte {
	var dims strings.Builder
	dims.WriteByte('(')
	for i, d := range shape {
		if i > 0 {
			dims.WriteString(", ")
		}
		dims.WriteString(strconv.Itoa(d))
	}
	if len(shape) == 1 {
		dims.WriteByte(',')
	}
	dims.WriteByte(')')
	dict := fmt.Sprintf("{'descr': '%s', 'fortran_order': False, 'shape': %s, }", descr, dims.String())
	pre := 10
	if len(dict)+1+10 > math.MaxUint16+10 {
		pre = 12
	}
	total := pre + len(dict) + 1
	pad := (npyAlign - total%npyAlign) % npyAlign
	hlen := len(dict) + pad + 1
	out := make([]byte, 0, pre+hlen)
	out = append(out, npyMagic...)
	if pre == 10 {
		out = append(out, 1, 0)
		out = binary.LittleEndian.AppendUint16(out, uint16(hlen))
	} else {
		out = append(out, 2, 0)
		out = binary.LittleEndian.AppendUint32(out, uint32(hlen))
	}
	out = append(out, dict...)
	out = append(out, strings.Repeat(" ", pad)...)
	return append(out, '\n')
}

// WriteNPY writes t as an .npy array of little-endian float32 (format 1.0,
// or 2.0 for a header too long for 1.0). A tensor whose data length does not
// match its shape is an error.
func WriteNPY(w io.Writer, t *nn.Tensor) error {
	if err := checkTensor(t); err != nil {
		return err
	}
	if err := writeNPY(w, t); err != nil {
		return fmt.Errorf("model: npy: %w", err)
	}
	return nil
}

// WriteNPYInt64 writes v as a 1-D .npy array of little-endian int64 (labels,
// indices).
func WriteNPYInt64(w io.Writer, v []int64) error {
	b := npyHeaderBytes("<i8", []int{len(v)})
	b = slices.Grow(b, 8*len(v))
	for _, x := range v {
		b = binary.LittleEndian.AppendUint64(b, uint64(x))
	}
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("model: npy: %w", err)
	}
	return nil
}

// ReadNPYInt64 reads a 1-D .npy array of little-endian int64 of exactly n
// values (WriteNPYInt64's format). Only what the file holds is read and at
// most n values are allocated, whatever its header claims.
func ReadNPYInt64(r io.Reader, n int) ([]int64, error) {
	br := bufio.NewReader(r)
	h, err := readNPYHeader(br)
	if err == nil && (h.DType != "<i8" || len(h.Shape) != 1 || h.Shape[0] != n) {
		err = npyErr("want int64 [%d], the array is %s %v", n, h.DType, h.Shape)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: npy: %w", ErrFormat, err)
	}
	b, err := io.ReadAll(io.LimitReader(br, 8*int64(n)))
	if err != nil {
		return nil, fmt.Errorf("model: npy: %w", err)
	}
	if len(b) != 8*n {
		return nil, fmt.Errorf("%w: npy: %d bytes of data for %d int64 values: %w", ErrFormat, len(b), n, io.ErrUnexpectedEOF)
	}
	v := make([]int64, n)
	for i := range v {
		v[i] = int64(binary.LittleEndian.Uint64(b[8*i:]))
	}
	return v, nil
}

// writeNPY writes a checked tensor and returns the writer's errors as they are.
func writeNPY(w io.Writer, t *nn.Tensor) error {
	if _, err := w.Write(npyHeaderBytes(npyDType, t.Shape)); err != nil {
		return err
	}
	buf := make([]byte, min(4*len(t.Data), readChunk))
	for done := 0; done < len(t.Data); {
		k := min(len(t.Data)-done, len(buf)/4)
		for i, v := range t.Data[done : done+k] {
			binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(v))
		}
		if _, err := w.Write(buf[:4*k]); err != nil {
			return err
		}
		done += k
	}
	return nil
}

func checkTensor(t *nn.Tensor) error {
	if t == nil {
		return errors.New("model: nil tensor")
	}
	n := 1
	for _, d := range t.Shape {
		if d < 0 {
			return fmt.Errorf("model: tensor shape %v has a negative dimension", t.Shape)
		}
		n *= d
	}
	if n != len(t.Data) {
		return fmt.Errorf("model: tensor shape %v needs %d values, has %d", t.Shape, n, len(t.Data))
	}
	return nil
}

// parsePyDict parses the restricted Python literal of an .npy header: a dict
// whose keys are strings and whose values are strings, True/False, or tuples
// of non-negative integers. Anything else (lists, nested dicts) is reported as
// a value of type unsupported, so the caller can name it.
func parsePyDict(s string) (map[string]any, error) {
	p := &pyParser{s: s}
	p.space()
	if !p.eat('{') {
		return nil, fmt.Errorf("want '{' at offset %d", p.i)
	}
	out := map[string]any{}
	for {
		p.space()
		if p.eat('}') {
			break
		}
		key, err := p.str()
		if err != nil {
			return nil, err
		}
		p.space()
		if !p.eat(':') {
			return nil, fmt.Errorf("want ':' after key %q at offset %d", key, p.i)
		}
		p.space()
		val, err := p.value()
		if err != nil {
			return nil, fmt.Errorf("value of %q: %w", key, err)
		}
		if _, dup := out[key]; dup {
			return nil, fmt.Errorf("duplicate key %q", key)
		}
		out[key] = val
		if more, err := p.next('}'); err != nil {
			return nil, err
		} else if !more {
			break
		}
	}
	p.space()
	if p.i != len(p.s) {
		return nil, fmt.Errorf("unexpected text after the dict at offset %d", p.i)
	}
	return out, nil
}

// unsupported stands for a header value bitrun does not interpret.
type unsupported string

func (u unsupported) String() string { return string(u) }

type pyParser struct {
	s string
	i int
}

func (p *pyParser) space() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t' || p.s[p.i] == '\n' || p.s[p.i] == '\r') {
		p.i++
	}
}

func (p *pyParser) eat(c byte) bool {
	if p.i < len(p.s) && p.s[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *pyParser) str() (string, error) {
	if p.i >= len(p.s) || (p.s[p.i] != '\'' && p.s[p.i] != '"') {
		return "", fmt.Errorf("want a quoted string at offset %d", p.i)
	}
	q := p.s[p.i]
	end := strings.IndexByte(p.s[p.i+1:], q)
	if end < 0 {
		return "", fmt.Errorf("unterminated string at offset %d", p.i)
	}
	v := p.s[p.i+1 : p.i+1+end]
	if strings.IndexByte(v, '\\') >= 0 {
		return "", fmt.Errorf("escapes in strings are not supported (offset %d)", p.i)
	}
	p.i += end + 2
	return v, nil
}

func (p *pyParser) value() (any, error) {
	if p.i >= len(p.s) {
		return nil, errors.New("missing value")
	}
	switch c := p.s[p.i]; {
	case c == '\'' || c == '"':
		return p.str()
	case c == '(':
		return p.tuple()
	case c == '[' || c == '{':
		return p.skipNested()
	case strings.HasPrefix(p.s[p.i:], "True"):
		p.i += 4
		return true, nil
	case strings.HasPrefix(p.s[p.i:], "False"):
		p.i += 5
		return false, nil
	}
	return nil, fmt.Errorf("unexpected %q at offset %d", p.s[p.i], p.i)
}

// next reads what follows an item of a dict or tuple: a comma (more
// reports that another item or the closing byte may follow) or the closing
// byte itself.
func (p *pyParser) next(closing byte) (more bool, err error) {
	p.space()
	if p.eat(',') {
		return true, nil
	}
	p.space()
	if !p.eat(closing) {
		return false, fmt.Errorf("want ',' or '%c' at offset %d", closing, p.i)
	}
	return false, nil
}

// tuple parses "()", "(3,)" or "(3, 4)" into non-negative ints.
func (p *pyParser) tuple() (any, error) {
	p.i++ // '('
	var dims []int
	for {
		p.space()
		if p.eat(')') {
			return dims, nil
		}
		start := p.i
		for p.i < len(p.s) && p.s[p.i] >= '0' && p.s[p.i] <= '9' {
			p.i++
		}
		if start == p.i {
			return nil, fmt.Errorf("want a non-negative integer at offset %d", p.i)
		}
		d, err := strconv.Atoi(p.s[start:p.i])
		if err != nil || d > math.MaxInt32 {
			return nil, fmt.Errorf("dimension %q out of range", p.s[start:p.i])
		}
		p.eat('L') // Python 2 long suffix
		dims = append(dims, d)
		if more, err := p.next(')'); err != nil {
			return nil, err
		} else if more {
			continue
		}
		if len(dims) == 1 {
			// "(3)" is an int in Python, not a tuple; NumPy never writes it.
			return nil, errors.New("one-element shape without a trailing comma")
		}
		return dims, nil
	}
}

// skipNested skips a bracketed value (structured dtype lists and the like)
// and returns it as unsupported text.
func (p *pyParser) skipNested() (any, error) {
	start, depth := p.i, 0
	for p.i < len(p.s) {
		switch c := p.s[p.i]; c {
		case '[', '{', '(':
			depth++
		case ']', '}', ')':
			depth--
		case '\'', '"':
			if _, err := p.str(); err != nil {
				return nil, err
			}
			continue
		}
		p.i++
		if depth == 0 {
			return unsupported(p.s[start:p.i]), nil
		}
	}
	return nil, fmt.Errorf("unterminated %q at offset %d", p.s[start], start)
}
