package onnxpb

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"google.golang.org/protobuf/encoding/protowire"
)

// MaxHeaderBytes caps the bytes ReadHeader keeps from the fields outside the
// graph (metadata, doc string, opsets): 64 MiB.
const MaxHeaderBytes = 64 << 20

// Header is a ModelProto read without its graph: what ReadHeader returns.
// Its Model holds the top-level fields, with Graph nil; GraphBytes is the
// size of the serialized graph that was skipped.
type Header struct {
	Model
	GraphBytes int64 // size of the serialized graph, 0 when absent
}

// ReadHeader reads the top-level fields of a serialized ModelProto from r,
// skipping the graph without loading it (seeking when r is an io.Seeker), so
// reading the metadata of a 2 GB model costs little memory. Untrusted input
// is safe: the fields kept are capped at MaxHeaderBytes in total (errors wrap
// ErrTooLarge) and malformed input returns an error wrapping ErrInvalid.
func ReadHeader(r io.Reader) (*Header, error) {
	sr := &skipReader{r: r, br: bufio.NewReader(r)}
	h := &Header{}
	kept := int64(0)
	for {
		tag, err := readUvarint(sr.br)
		if err == io.EOF {
			return h, nil
		}
		if err != nil {
			return nil, headerErr(err)
		}
		if tag > uint64(protowire.MaxValidNumber)<<3|7 {
			return nil, fmt.Errorf("%w: tag %d out of range", ErrInvalid, tag)
		}
		num, typ := protowire.DecodeTag(tag)
		if num < protowire.MinValidNumber {
			return nil, fmt.Errorf("%w: field number %d", ErrInvalid, num)
		}
		switch typ {
		case protowire.VarintType:
			v, err := readUvarint(sr.br)
			if err != nil {
				return nil, headerErr(err)
			}
			switch num {
			case fModelIRVersion:
				h.IRVersion = int64(v)
			case fModelModelVersion:
				h.ModelVersion = int64(v)
			}
		case protowire.Fixed32Type:
			if err := sr.skip(4); err != nil {
				return nil, err
			}
		case protowire.Fixed64Type:
			if err := sr.skip(8); err != nil {
				return nil, err
			}
		case protowire.BytesType:
			n, err := readUvarint(sr.br)
			if err != nil {
				return nil, headerErr(err)
			}
			if n > MaxMessageSize {
				return nil, fmt.Errorf("%w: field %d claims %d bytes", ErrTooLarge, num, n)
			}
			switch num {
			case fModelGraph:
				if err := sr.skip(int64(n)); err != nil {
					return nil, err
				}
				h.GraphBytes = int64(n)
				continue
			case fModelProducerName, fModelProducerVersion, fModelDomain, fModelDocString,
				fModelOpsetImport, fModelMetadataProps:
			default:
				if err := sr.skip(int64(n)); err != nil {
					return nil, err
				}
				continue
			}
			kept += int64(n)
			if kept > MaxHeaderBytes {
				return nil, fmt.Errorf("%w: metadata exceeds %d bytes", ErrTooLarge, MaxHeaderBytes)
			}
			// Grow with the data actually read: a claimed length costs
			// nothing until the bytes arrive.
			b, err := io.ReadAll(io.LimitReader(sr.br, int64(n)))
			if err != nil {
				return nil, headerErr(err)
			}
			if uint64(len(b)) != n {
				return nil, fmt.Errorf("%w: truncated", ErrInvalid)
			}
			if err := h.unmarshalField(field{num: num, typ: typ, b: b}); err != nil {
				return nil, err
			}
		default:
			// Groups are not used by ONNX; anything else is not protobuf.
			return nil, fmt.Errorf("%w: field %d has wire type %d", ErrInvalid, num, typ)
		}
	}
}

func headerErr(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: truncated", ErrInvalid)
	}
	if errors.Is(err, errOverflow) {
		return fmt.Errorf("%w: varint overflows", ErrInvalid)
	}
	return fmt.Errorf("onnxpb: reading header: %w", err)
}

var errOverflow = errors.New("varint overflows 64 bits")

// readUvarint reads a base-128 varint of at most 10 bytes.
func readUvarint(r io.ByteReader) (uint64, error) {
	var v uint64
	for i := 0; i < binary.MaxVarintLen64; i++ {
		c, err := r.ReadByte()
		if err != nil {
			if i > 0 && err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return 0, err
		}
		if i == binary.MaxVarintLen64-1 && c > 1 {
			return 0, errOverflow
		}
		v |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			return v, nil
		}
	}
	return 0, errOverflow
}

// skipReader skips bytes through a bufio.Reader, seeking the underlying
// reader past large skips when it can.
type skipReader struct {
	r  io.Reader
	br *bufio.Reader
}

func (s *skipReader) skip(n int64) error {
	if buf := int64(s.br.Buffered()); n <= buf {
		_, err := s.br.Discard(int(n))
		return err
	}
	if sk, ok := s.r.(io.Seeker); ok {
		n -= int64(s.br.Buffered())
		cur, err := sk.Seek(0, io.SeekCurrent)
		if err != nil {
			return fmt.Errorf("onnxpb: %w", err)
		}
		end, err := sk.Seek(0, io.SeekEnd)
		if err != nil {
			return fmt.Errorf("onnxpb: %w", err)
		}
		if cur+n > end {
			return fmt.Errorf("%w: truncated", ErrInvalid)
		}
		if _, err := sk.Seek(cur+n, io.SeekStart); err != nil {
			return fmt.Errorf("onnxpb: %w", err)
		}
		s.br.Reset(s.r)
		return nil
	}
	if _, err := io.CopyN(io.Discard, s.br, n); err != nil {
		return headerErr(err)
	}
	return nil
}
