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

func (m *Model) unmarshal(b []byte) error {
	it := fields{b: b}
	for it.next() {
		f := it.f
		var err error
		switch f.num {
		case fModelIRVersion:
			m.IRVersion, err = varint[int64](f, "ModelProto")
		case fModelProducerName:
			m.ProducerName, err = f.str("ModelProto")
		case fModelProducerVersion:
			m.ProducerVersion, err = f.str("ModelProto")
		case fModelDomain:
			m.Domain, err = f.str("ModelProto")
		case fModelModelVersion:
			m.ModelVersion, err = varint[int64](f, "ModelProto")
		case fModelDocString:
			m.DocString, err = f.str("ModelProto")
		case fModelGraph:
			var mb []byte
			if mb, err = f.wantBytes("ModelProto"); err == nil {
				m.Graph = &Graph{}
				err = m.Graph.unmarshal(mb, 1)
			}
		case fModelOpsetImport:
			var o OpsetID
			if o, err = unmarshalOpset(f); err == nil {
				m.OpsetImport = append(m.OpsetImport, o)
			}
		case fModelMetadataProps:
			var e StringStringEntry
			if e, err = unmarshalEntry(f); err == nil {
				m.MetadataProps = append(m.MetadataProps, e)
			}
		}
		if err != nil {
			return err
		}
	}
	return it.err
}

func (f field) str(msg string) (string, error) {
	b, err := f.wantBytes(msg)
	return string(b), err
}

func unmarshalOpset(f field) (OpsetID, error) {
	var o OpsetID
	b, err := f.wantBytes("ModelProto")
	if err != nil {
		return o, err
	}
	it := fields{b: b}
	for it.next() {
		switch it.f.num {
		case fOpsetDomain:
			o.Domain, err = it.f.str("OperatorSetIdProto")
		case fOpsetVersion:
			o.Version, err = varint[int64](it.f, "OperatorSetIdProto")
		}
		if err != nil {
			return o, err
		}
	}
	return o, it.err
}

func unmarshalEntry(f field) (StringStringEntry, error) {
	var e StringStringEntry
	b, err := f.wantBytes("entry")
	if err != nil {
		return e, err
	}
	it := fields{b: b}
	for it.next() {
		switch it.f.num {
		case fEntryKey:
			e.Key, err = it.f.str("StringStringEntryProto")
		case fEntryValue:
			e.Value, err = it.f.str("StringStringEntryProto")
		}
		if err != nil {
			return e, err
		}
	}
	return e, it.err
}

func (g *Graph) unmarshal(b []byte, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("%w: graphs nested deeper than %d", ErrInvalid, maxDepth)
	}
	it := fields{b: b}
	for it.next() {
		f := it.f
		var err error
		var mb []byte
		switch f.num {
		case fGraphNode:
			if mb, err = f.wantBytes("GraphProto"); err == nil {
				n := &Node{}
				err = n.unmarshal(mb, depth+1)
				g.Nodes = append(g.Nodes, n)
			}
		case fGraphName:
			g.Name, err = f.str("GraphProto")
		case fGraphInitializer:
			if mb, err = f.wantBytes("GraphProto"); err == nil {
				t := &Tensor{}
				err = t.unmarshal(mb)
				g.Initializers = append(g.Initializers, t)
			}
		case fGraphDocString:
			g.DocString, err = f.str("GraphProto")
		case fGraphInput, fGraphOutput, fGraphValueInfo:
			if mb, err = f.wantBytes("GraphProto"); err == nil {
				v := &ValueInfo{}
				err = v.unmarshal(mb)
				switch f.num {
				case fGraphInput:
					g.Inputs = append(g.Inputs, v)
				case fGraphOutput:
					g.Outputs = append(g.Outputs, v)
				default:
					g.ValueInfo = append(g.ValueInfo, v)
				}
			}
		}
		if err != nil {
			return err
		}
	}
	return it.err
}

func (nd *Node) unmarshal(b []byte, depth int) error {
	it := fields{b: b}
	for it.next() {
		f := it.f
		var err error
		var s string
		switch f.num {
		case fNodeInput:
			if s, err = f.str("NodeProto"); err == nil {
				nd.Inputs = append(nd.Inputs, s)
			}
		case fNodeOutput:
			if s, err = f.str("NodeProto"); err == nil {
				nd.Outputs = append(nd.Outputs, s)
			}
		case fNodeName:
			nd.Name, err = f.str("NodeProto")
		case fNodeOpType:
			nd.OpType, err = f.str("NodeProto")
		case fNodeDomain:
			nd.Domain, err = f.str("NodeProto")
		case fNodeDocString:
			nd.DocString, err = f.str("NodeProto")
		case fNodeAttribute:
			var mb []byte
			if mb, err = f.wantBytes("NodeProto"); err == nil {
				a := &Attribute{}
				err = a.unmarshal(mb, depth+1)
				nd.Attributes = append(nd.Attributes, a)
			}
		}
		if err != nil {
			return err
		}
	}
	return it.err
}

func (a *Attribute) unmarshal(b []byte, depth int) error {
	it := fields{b: b}
	for it.next() {
		f := it.f
		var err error
		var mb []byte
		switch f.num {
		case fAttrName:
			a.Name, err = f.str("AttributeProto")
		case fAttrType:
			a.Type, err = varint[AttributeType](f, "AttributeProto")
		case fAttrF:
			if f.typ != protowire.Fixed32Type {
				err = wireErr("AttributeProto", f)
			}
			a.F = math.Float32frombits(uint32(f.v))
		case fAttrI:
			a.I, err = varint[int64](f, "AttributeProto")
		case fAttrS:
			a.S, err = f.wantBytes("AttributeProto")
		case fAttrT:
			if mb, err = f.wantBytes("AttributeProto"); err == nil {
				a.T = &Tensor{}
				err = a.T.unmarshal(mb)
			}
		case fAttrG:
			if mb, err = f.wantBytes("AttributeProto"); err == nil {
				a.G = &Graph{}
				err = a.G.unmarshal(mb, depth+1)
			}
		case fAttrFloats:
			a.Floats, err = f.appendFloats(a.Floats, "AttributeProto")
		case fAttrInts:
			a.Ints, err = f.appendInt64s(a.Ints, "AttributeProto")
		case fAttrStrings:
			if mb, err = f.wantBytes("AttributeProto"); err == nil {
				a.Strings = append(a.Strings, mb)
			}
		}
		if err != nil {
			return err
		}
	}
	return it.err
}

func (t *Tensor) unmarshal(b []byte) error {
	it := fields{b: b}
	for it.next() {
		f := it.f
		var err error
		switch f.num {
		case fTensorDims:
			t.Dims, err = f.appendInt64s(t.Dims, "TensorProto")
		case fTensorDataType:
			t.DataType, err = varint[DataType](f, "TensorProto")
		case fTensorFloatData:
			t.FloatData, err = f.appendFloats(t.FloatData, "TensorProto")
		case fTensorInt32Data:
			var v []int64
			if v, err = f.appendInt64s(nil, "TensorProto"); err == nil {
				for _, x := range v {
					t.Int32Data = append(t.Int32Data, int32(x))
				}
			}
		case fTensorInt64Data:
			t.Int64Data, err = f.appendInt64s(t.Int64Data, "TensorProto")
		case fTensorName:
			t.Name, err = f.str("TensorProto")
		case fTensorDocString:
			t.DocString, err = f.str("TensorProto")
		case fTensorRawData:
			t.RawData, err = f.wantBytes("TensorProto")
		case fTensorExternalData:
			var e StringStringEntry
			if e, err = unmarshalEntry(f); err == nil {
				t.ExternalData = append(t.ExternalData, e)
			}
		case fTensorDataLocation:
			t.DataLocation, err = varint[DataLocation](f, "TensorProto")
		}
		if err != nil {
			return err
		}
	}
	return it.err
}

func (v *ValueInfo) unmarshal(b []byte) error {
	it := fields{b: b}
	for it.next() {
		f := it.f
		var err error
		switch f.num {
		case fValueName:
			v.Name, err = f.str("ValueInfoProto")
		case fValueDocString:
			v.DocString, err = f.str("ValueInfoProto")
		case fValueType:
			var tb []byte
			if tb, err = f.wantBytes("ValueInfoProto"); err == nil {
				err = v.unmarshalType(tb)
			}
		}
		if err != nil {
			return err
		}
	}
	return it.err
}

// unmarshalType reads TypeProto; types other than tensor_type are skipped.
func (v *ValueInfo) unmarshalType(b []byte) error {
	it := fields{b: b}
	for it.next() {
		if it.f.num != fTypeTensorType {
			continue
		}
		tb, err := it.f.wantBytes("TypeProto")
		if err != nil {
			return err
		}
		tt := fields{b: tb}
		for tt.next() {
			switch tt.f.num {
			case fTensorElemType:
				e, err := tt.f.wantVarint("TypeProto.Tensor")
				if err != nil {
					return err
				}
				v.ElemType = DataType(int32(e))
			case fTensorShape:
				sb, err := tt.f.wantBytes("TypeProto.Tensor")
				if err != nil {
					return err
				}
				v.HasShape = true
				if err := v.unmarshalShape(sb); err != nil {
					return err
				}
			}
		}
		if tt.err != nil {
			return tt.err
		}
	}
	return it.err
}

func (v *ValueInfo) unmarshalShape(b []byte) error {
	it := fields{b: b}
	for it.next() {
		if it.f.num != fShapeDim {
			continue
		}
		db, err := it.f.wantBytes("TensorShapeProto")
		if err != nil {
			return err
		}
		var d Dim
		dt := fields{b: db}
		for dt.next() {
			switch dt.f.num {
			case fDimValue:
				x, err := dt.f.wantVarint("Dimension")
				if err != nil {
					return err
				}
				d.Value = int64(x)
			case fDimParam:
				if d.Param, err = dt.f.str("Dimension"); err != nil {
					return err
				}
			}
		}
		if dt.err != nil {
			return dt.err
		}
		v.Shape = append(v.Shape, d)
	}
	return it.err
}
