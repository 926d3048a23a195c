package onnxpb

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"

	"google.golang.org/protobuf/encoding/protowire"
)

// Errors wrapped by the reader and writer.
var (
	// ErrInvalid is wrapped by every error about malformed protobuf or ONNX data.
	ErrInvalid = errors.New("onnxpb: invalid ONNX data")
	// ErrTooLarge is wrapped when a message or field exceeds a size limit.
	ErrTooLarge = errors.New("onnxpb: too large")
	// ErrExternal is wrapped when tensor bytes live in an external file.
	ErrExternal = errors.New("onnxpb: tensor data is external")
)

// maxDepth bounds message nesting (graphs inside attributes inside nodes).
const maxDepth = 32

// Unmarshal parses a serialized ModelProto. Byte fields (RawData, attribute
// strings) alias b. Unknown fields are skipped. Malformed input returns an
// error wrapping ErrInvalid, never panics; the memory used is bounded by a
// small multiple of len(b).
func Unmarshal(b []byte) (*Model, error) {
	if int64(len(b)) > MaxMessageSize {
		return nil, fmt.Errorf("%w: %d bytes exceeds the protobuf limit", ErrTooLarge, len(b))
	}
	m := &Model{}
	err := m.unmarshal(b)
	if err != nil {
		return nil, err
	}
	return m, nil
}

// ReadFile reads and parses the .onnx file at path (external data is not
// loaded: such tensors keep DataLocation LocationExternal).
func ReadFile(path string) (*Model, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("onnxpb: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("onnxpb: %w", err)
	}
	if st.Size() > MaxMessageSize {
		return nil, fmt.Errorf("%w: %s is %d bytes, over the protobuf limit", ErrTooLarge, path, st.Size())
	}
	b := make([]byte, st.Size())
	if _, err := io.ReadFull(f, b); err != nil {
		return nil, fmt.Errorf("onnxpb: reading %s: %w", path, err)
	}
	m, err := Unmarshal(b)
	if err != nil {
		return nil, fmt.Errorf("%w (in %s)", err, path)
	}
	return m, nil
}

// field is one decoded wire field.
type field struct {
	num protowire.Number
	typ protowire.Type
	v   uint64 // varint, fixed32 or fixed64 value
	b   []byte // bytes value
}

// fields iterates over the fields of message b.
type fields struct {
	b   []byte
	err error
	f   field
}

func (it *fields) next() bool {
	if it.err != nil || len(it.b) == 0 {
		return false
	}
	num, typ, n := protowire.ConsumeTag(it.b)
	if n < 0 {
		it.err = fmt.Errorf("%w: %v", ErrInvalid, protowire.ParseError(n))
		return false
	}
	it.b = it.b[n:]
	it.f = field{num: num, typ: typ}
	switch typ {
	case protowire.VarintType:
		it.f.v, n = protowire.ConsumeVarint(it.b)
	case protowire.Fixed32Type:
		var v uint32
		v, n = protowire.ConsumeFixed32(it.b)
		it.f.v = uint64(v)
	case protowire.Fixed64Type:
		it.f.v, n = protowire.ConsumeFixed64(it.b)
	case protowire.BytesType:
		it.f.b, n = protowire.ConsumeBytes(it.b)
	default:
		n = protowire.ConsumeFieldValue(num, typ, it.b)
	}
	if n < 0 {
		it.err = fmt.Errorf("%w: field %d: %v", ErrInvalid, num, protowire.ParseError(n))
		return false
	}
	it.b = it.b[n:]
	return true
}

func wireErr(msg string, f field) error {
	return fmt.Errorf("%w: %s field %d has wire type %d", ErrInvalid, msg, f.num, f.typ)
}

func (f field) wantBytes(msg string) ([]byte, error) {
	if f.typ != protowire.BytesType {
		return nil, wireErr(msg, f)
	}
	return f.b, nil
}

func (f field) wantVarint(msg string) (uint64, error) {
	if f.typ != protowire.VarintType {
		return 0, wireErr(msg, f)
	}
	return f.v, nil
}

// varint decodes a varint field as T (int64, or an int32 enum: the low 32
// bits, as protobuf does).
func varint[T ~int32 | ~int64](f field, msg string) (T, error) {
	v, err := f.wantVarint(msg)
	return T(v), err
}

// appendInt64s decodes a repeated int64 field, packed or not.
func (f field) appendInt64s(dst []int64, msg string) ([]int64, error) {
	switch f.typ {
	case protowire.VarintType:
		return append(dst, int64(f.v)), nil
	case protowire.BytesType:
		b := f.b
		for len(b) > 0 {
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return nil, fmt.Errorf("%w: %s field %d: %v", ErrInvalid, msg, f.num, protowire.ParseError(n))
			}
			dst = append(dst, int64(v))
			b = b[n:]
		}
		return dst, nil
	}
	return nil, wireErr(msg, f)
}

// appendFloats decodes a repeated float field, packed or not.
func (f field) appendFloats(dst []float32, msg string) ([]float32, error) {
	switch f.typ {
	case protowire.Fixed32Type:
		return append(dst, math.Float32frombits(uint32(f.v))), nil
	case protowire.BytesType:
		if len(f.b)%4 != 0 {
			return nil, fmt.Errorf("%w: %s field %d: packed floats of %d bytes", ErrInvalid, msg, f.num, len(f.b))
		}
		for b := f.b; len(b) > 0; b = b[4:] {
			v, _ := protowire.ConsumeFixed32(b)
			dst = append(dst, math.Float32frombits(v))
		}
		return dst, nil
	}
	return nil, wireErr(msg, f)
}

// decodeMessage calls fn with each field of message b in order and stops at
// the first error, from fn or from the wire format. Every message type's
// unmarshal is one call of it with a switch on the field number.
func decodeMessage(b []byte, fn func(f field) error) error {
	it := fields{b: b}
	for it.next() {
		if err := fn(it.f); err != nil {
			return err
		}
	}
	return it.err
}

// message decodes a length-delimited field as a nested message with dec.
func (f field) message(msg string, dec func(b []byte) error) error {
	b, err := f.wantBytes(msg)
	if err != nil {
		return err
	}
	return dec(b)
}

func (m *Model) unmarshal(b []byte) error {
	return decodeMessage(b, m.unmarshalField)
}

// unmarshalField decodes one top-level field; ReadHeader uses it too for the
// fields it keeps.
func (m *Model) unmarshalField(f field) (err error) {
	const msg = "ModelProto"
	switch f.num {
	case fModelIRVersion:
		m.IRVersion, err = varint[int64](f, msg)
	case fModelProducerName:
		m.ProducerName, err = f.str(msg)
	case fModelProducerVersion:
		m.ProducerVersion, err = f.str(msg)
	case fModelDomain:
		m.Domain, err = f.str(msg)
	case fModelModelVersion:
		m.ModelVersion, err = varint[int64](f, msg)
	case fModelDocString:
		m.DocString, err = f.str(msg)
	case fModelGraph:
		err = f.message(msg, func(b []byte) error {
			m.Graph = &Graph{}
			return m.Graph.unmarshal(b, 1)
		})
	case fModelOpsetImport:
		err = f.message(msg, func(b []byte) error {
			o, err := unmarshalOpset(b)
			m.OpsetImport = append(m.OpsetImport, o)
			return err
		})
	case fModelMetadataProps:
		err = f.message(msg, func(b []byte) error {
			return appendEntry(&m.MetadataProps, b)
		})
	}
	return err
}

func (f field) str(msg string) (string, error) {
	b, err := f.wantBytes(msg)
	return string(b), err
}

func unmarshalOpset(b []byte) (o OpsetID, err error) {
	const msg = "OperatorSetIdProto"
	err = decodeMessage(b, func(f field) (err error) {
		switch f.num {
		case fOpsetDomain:
			o.Domain, err = f.str(msg)
		case fOpsetVersion:
			o.Version, err = varint[int64](f, msg)
		}
		return err
	})
	return o, err
}

// appendEntry decodes a StringStringEntryProto and appends it to dst.
func appendEntry(dst *[]StringStringEntry, b []byte) error {
	const msg = "StringStringEntryProto"
	var e StringStringEntry
	err := decodeMessage(b, func(f field) (err error) {
		switch f.num {
		case fEntryKey:
			e.Key, err = f.str(msg)
		case fEntryValue:
			e.Value, err = f.str(msg)
		}
		return err
	})
	*dst = append(*dst, e)
	return err
}

func (g *Graph) unmarshal(b []byte, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("%w: graphs nested deeper than %d", ErrInvalid, maxDepth)
	}
	const msg = "GraphProto"
	return decodeMessage(b, func(f field) (err error) {
		switch f.num {
		case fGraphNode:
			err = f.message(msg, func(b []byte) error {
				n := &Node{}
				g.Nodes = append(g.Nodes, n)
				return n.unmarshal(b, depth+1)
			})
		case fGraphName:
			g.Name, err = f.str(msg)
		case fGraphInitializer:
			err = f.message(msg, func(b []byte) error {
				t := &Tensor{}
				g.Initializers = append(g.Initializers, t)
				return t.unmarshal(b)
			})
		case fGraphDocString:
			g.DocString, err = f.str(msg)
		case fGraphInput:
			err = f.message(msg, func(b []byte) error { return appendValueInfo(&g.Inputs, b) })
		case fGraphOutput:
			err = f.message(msg, func(b []byte) error { return appendValueInfo(&g.Outputs, b) })
		case fGraphValueInfo:
			err = f.message(msg, func(b []byte) error { return appendValueInfo(&g.ValueInfo, b) })
		}
		return err
	})
}

func (nd *Node) unmarshal(b []byte, depth int) error {
	const msg = "NodeProto"
	return decodeMessage(b, func(f field) (err error) {
		var s string
		switch f.num {
		case fNodeInput:
			s, err = f.str(msg)
			nd.Inputs = append(nd.Inputs, s)
		case fNodeOutput:
			s, err = f.str(msg)
			nd.Outputs = append(nd.Outputs, s)
		case fNodeName:
			nd.Name, err = f.str(msg)
		case fNodeOpType:
			nd.OpType, err = f.str(msg)
		case fNodeDomain:
			nd.Domain, err = f.str(msg)
		case fNodeDocString:
			nd.DocString, err = f.str(msg)
		case fNodeAttribute:
			err = f.message(msg, func(b []byte) error {
				a := &Attribute{}
				nd.Attributes = append(nd.Attributes, a)
				return a.unmarshal(b, depth+1)
			})
		}
		return err
	})
}

func (a *Attribute) unmarshal(b []byte, depth int) error {
	const msg = "AttributeProto"
	return decodeMessage(b, func(f field) (err error) {
		var s []byte
		switch f.num {
		case fAttrName:
			a.Name, err = f.str(msg)
		case fAttrType:
			a.Type, err = varint[AttributeType](f, msg)
		case fAttrF:
			if f.typ != protowire.Fixed32Type {
				err = wireErr(msg, f)
			}
			a.F = math.Float32frombits(uint32(f.v))
		case fAttrI:
			a.I, err = varint[int64](f, msg)
		case fAttrS:
			a.S, err = f.wantBytes(msg)
		case fAttrT:
			err = f.message(msg, func(b []byte) error {
				a.T = &Tensor{}
				return a.T.unmarshal(b)
			})
		case fAttrG:
			err = f.message(msg, func(b []byte) error {
				a.G = &Graph{}
				return a.G.unmarshal(b, depth+1)
			})
		case fAttrFloats:
			a.Floats, err = f.appendFloats(a.Floats, msg)
		case fAttrInts:
			a.Ints, err = f.appendInt64s(a.Ints, msg)
		case fAttrStrings:
			s, err = f.wantBytes(msg)
			a.Strings = append(a.Strings, s)
		}
		return err
	})
}

func (t *Tensor) unmarshal(b []byte) error {
	const msg = "TensorProto"
	return decodeMessage(b, func(f field) (err error) {
		switch f.num {
		case fTensorDims:
			t.Dims, err = f.appendInt64s(t.Dims, msg)
		case fTensorDataType:
			t.DataType, err = varint[DataType](f, msg)
		case fTensorFloatData:
			t.FloatData, err = f.appendFloats(t.FloatData, msg)
		case fTensorInt32Data:
			var v []int64
			v, err = f.appendInt64s(nil, msg)
			for _, x := range v {
				t.Int32Data = append(t.Int32Data, int32(x))
			}
		case fTensorInt64Data:
			t.Int64Data, err = f.appendInt64s(t.Int64Data, msg)
		case fTensorName:
			t.Name, err = f.str(msg)
		case fTensorDocString:
			t.DocString, err = f.str(msg)
		case fTensorRawData:
			t.RawData, err = f.wantBytes(msg)
		case fTensorExternalData:
			err = f.message(msg, func(b []byte) error {
				return appendEntry(&t.ExternalData, b)
			})
		case fTensorDataLocation:
			t.DataLocation, err = varint[DataLocation](f, msg)
		}
		return err
	})
}

// appendValueInfo decodes a ValueInfoProto and appends it to dst.
func appendValueInfo(dst *[]*ValueInfo, b []byte) error {
	const msg = "ValueInfoProto"
	v := &ValueInfo{}
	*dst = append(*dst, v)
	return decodeMessage(b, func(f field) (err error) {
		switch f.num {
		case fValueName:
			v.Name, err = f.str(msg)
		case fValueDocString:
			v.DocString, err = f.str(msg)
		case fValueType:
			err = f.message(msg, v.unmarshalType)
		}
		return err
	})
}

// unmarshalType reads TypeProto; types other than tensor_type are skipped.
func (v *ValueInfo) unmarshalType(b []byte) error {
	return decodeMessage(b, func(f field) error {
		if f.num != fTypeTensorType {
			return nil
		}
		return f.message("TypeProto", v.unmarshalTensorType)
	})
}

// unmarshalTensorType reads TypeProto.Tensor: the element type and shape.
func (v *ValueInfo) unmarshalTensorType(b []byte) error {
	const msg = "TypeProto.Tensor"
	return decodeMessage(b, func(f field) (err error) {
		switch f.num {
		case fTensorElemType:
			var e uint64
			e, err = f.wantVarint(msg)
			v.ElemType = DataType(int32(e))
		case fTensorShape:
			err = f.message(msg, func(b []byte) error {
				v.HasShape = true
				return v.unmarshalShape(b)
			})
		}
		return err
	})
}

func (v *ValueInfo) unmarshalShape(b []byte) error {
	return decodeMessage(b, func(f field) error {
		if f.num != fShapeDim {
			return nil
		}
		return f.message("TensorShapeProto", func(b []byte) error {
			var d Dim
			err := decodeMessage(b, func(f field) (err error) {
				switch f.num {
				case fDimValue:
					var x uint64
					x, err = f.wantVarint("Dimension")
					d.Value = int64(x)
				case fDimParam:
					d.Param, err = f.str("Dimension")
				}
				return err
			})
			v.Shape = append(v.Shape, d)
			return err
		})
	})
}
