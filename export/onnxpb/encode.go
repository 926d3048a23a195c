package onnxpb

import (
	"fmt"
	"io"
	"math"

	"google.golang.org/protobuf/encoding/protowire"
)

// MaxMessageSize is the protobuf limit on one serialized message (2 GiB - 1).
// Larger models must keep their weights in external data.
const MaxMessageSize = math.MaxInt32

// Field numbers from onnx.proto.
const (
	// ModelProto
	fModelIRVersion       = 1
	fModelProducerName    = 2
	fModelProducerVersion = 3
	fModelDomain          = 4
	fModelModelVersion    = 5
	fModelDocString       = 6
	fModelGraph           = 7
	fModelOpsetImport     = 8
	fModelMetadataProps   = 14

	// OperatorSetIdProto
	fOpsetDomain  = 1
	fOpsetVersion = 2

	// StringStringEntryProto
	fEntryKey   = 1
	fEntryValue = 2

	// GraphProto
	fGraphNode        = 1
	fGraphName        = 2
	fGraphInitializer = 5
	fGraphDocString   = 10
	fGraphInput       = 11
	fGraphOutput      = 12
	fGraphValueInfo   = 13

	// NodeProto
	fNodeInput     = 1
	fNodeOutput    = 2
	fNodeName      = 3
	fNodeOpType    = 4
	fNodeAttribute = 5
	fNodeDocString = 6
	fNodeDomain    = 7

	// AttributeProto
	fAttrName    = 1
	fAttrF       = 2
	fAttrI       = 3
	fAttrS       = 4
	fAttrT       = 5
	fAttrG       = 6
	fAttrFloats  = 7
	fAttrInts    = 8
	fAttrStrings = 9
	fAttrType    = 20

	// TensorProto
	fTensorDims         = 1
	fTensorDataType     = 2
	fTensorFloatData    = 4
	fTensorInt32Data    = 5
	fTensorInt64Data    = 7
	fTensorName         = 8
	fTensorRawData      = 9
	fTensorDocString    = 12
	fTensorExternalData = 13
	fTensorDataLocation = 14

	// ValueInfoProto
	fValueName      = 1
	fValueType      = 2
	fValueDocString = 3

	// TypeProto, TypeProto.Tensor, TensorShapeProto, Dimension
	fTypeTensorType = 1
	fTensorElemType = 1
	fTensorShape    = 2
	fShapeDim       = 1
	fDimValue       = 1
	fDimParam       = 2
)

// Marshal serializes m. It fails with ErrTooLarge when the result would
// exceed MaxMessageSize: move the weights to external data first.
func (m *Model) Marshal() ([]byte, error) {
	n := m.Size()
	if n > MaxMessageSize {
		return nil, fmt.Errorf("%w: model is %d bytes", ErrTooLarge, n)
	}
	e := &encoder{buf: make([]byte, 0, n)}
	m.encode(e)
	if e.err != nil {
		return nil, e.err
	}
	return e.buf, nil
}

// WriteTo streams the serialized model to w: large byte fields go straight
// to w and deferred tensors are produced one at a time, so writing needs
// little memory beyond the model itself. It fails with ErrTooLarge when the
// result would exceed MaxMessageSize.
func (m *Model) WriteTo(w io.Writer) (int64, error) {
	if n := m.Size(); n > MaxMessageSize {
		return 0, fmt.Errorf("%w: model is %d bytes", ErrTooLarge, n)
	}
	e := &encoder{w: w, buf: make([]byte, 0, flushSize)}
	m.encode(e)
	e.flush()
	return e.n, e.err
}

// flushSize is the buffer size of a streaming encoder; byte fields at least
// this large bypass the buffer.
const flushSize = 1 << 16

// encoder appends to buf, or streams to w when w is set.
type encoder struct {
	buf []byte
	w   io.Writer
	n   int64 // bytes written to w
	err error
}

func (e *encoder) flush() {
	if e.w == nil || len(e.buf) == 0 {
		return
	}
	if e.err == nil {
		var n int
		n, e.err = e.w.Write(e.buf)
		e.n += int64(n)
	}
	e.buf = e.buf[:0]
}

// bytes writes a length-delimited field's payload.
func (e *encoder) bytes(b []byte) {
	if e.w == nil || len(b) < flushSize {
		e.buf = append(e.buf, b...)
		if len(e.buf) >= flushSize {
			e.flush()
		}
		return
	}
	e.flush()
	if e.err == nil {
		var n int
		n, e.err = e.w.Write(b)
		e.n += int64(n)
	}
}

// Size is the serialized size in bytes.
func (m *Model) Size() int {
	n := sizeVarintField(fModelIRVersion, uint64(m.IRVersion))
	n += sizeStringField(fModelProducerName, m.ProducerName)
	n += sizeStringField(fModelProducerVersion, m.ProducerVersion)
	n += sizeStringField(fModelDomain, m.Domain)
	if m.ModelVersion != 0 {
		n += sizeVarintField(fModelModelVersion, uint64(m.ModelVersion))
	}
	n += sizeStringField(fModelDocString, m.DocString)
	if m.Graph != nil {
		n += sizeMessageField(fModelGraph, m.Graph.size())
	}
	n += sizeMessages(fModelOpsetImport, m.OpsetImport)
	n += sizeMessages(fModelMetadataProps, m.MetadataProps)
	return n
}

func (m *Model) encode(e *encoder) {
	e.buf = appendVarintField(e.buf, fModelIRVersion, uint64(m.IRVersion))
	e.buf = appendStringField(e.buf, fModelProducerName, m.ProducerName)
	e.buf = appendStringField(e.buf, fModelProducerVersion, m.ProducerVersion)
	e.buf = appendStringField(e.buf, fModelDomain, m.Domain)
	if m.ModelVersion != 0 {
		e.buf = appendVarintField(e.buf, fModelModelVersion, uint64(m.ModelVersion))
	}
	e.buf = appendStringField(e.buf, fModelDocString, m.DocString)
	if m.Graph != nil {
		e.message(fModelGraph, m.Graph)
	}
	encodeMessages(e, fModelOpsetImport, m.OpsetImport)
	encodeMessages(e, fModelMetadataProps, m.MetadataProps)
}

func (o OpsetID) size() int {
	return sizeStringField(fOpsetDomain, o.Domain) + sizeVarintField(fOpsetVersion, uint64(o.Version))
}

func (o OpsetID) encode(e *encoder) {
	e.buf = appendStringField(e.buf, fOpsetDomain, o.Domain)
	e.buf = appendVarintField(e.buf, fOpsetVersion, uint64(o.Version))
}

func (e StringStringEntry) size() int {
	return sizeStringField(fEntryKey, e.Key) + sizeStringField(fEntryValue, e.Value)
}

func (kv StringStringEntry) encode(e *encoder) {
	e.buf = appendStringField(e.buf, fEntryKey, kv.Key)
	e.buf = appendStringField(e.buf, fEntryValue, kv.Value)
}

func (g *Graph) size() int {
	n := sizeMessages(fGraphNode, g.Nodes)
	n += sizeStringField(fGraphName, g.Name)
	n += sizeMessages(fGraphInitializer, g.Initializers)
	n += sizeStringField(fGraphDocString, g.DocString)
	n += sizeMessages(fGraphInput, g.Inputs)
	n += sizeMessages(fGraphOutput, g.Outputs)
	n += sizeMessages(fGraphValueInfo, g.ValueInfo)
	return n
}

func (g *Graph) encode(e *encoder) {
	encodeMessages(e, fGraphNode, g.Nodes)
	e.buf = appendStringField(e.buf, fGraphName, g.Name)
	encodeMessages(e, fGraphInitializer, g.Initializers)
	e.buf = appendStringField(e.buf, fGraphDocString, g.DocString)
	encodeMessages(e, fGraphInput, g.Inputs)
	encodeMessages(e, fGraphOutput, g.Outputs)
	encodeMessages(e, fGraphValueInfo, g.ValueInfo)
}

func (nd *Node) size() int {
	n := 0
	for _, s := range nd.Inputs {
		n += sizeBytesField(fNodeInput, len(s))
	}
	for _, s := range nd.Outputs {
		n += sizeBytesField(fNodeOutput, len(s))
	}
	n += sizeStringField(fNodeName, nd.Name)
	n += sizeStringField(fNodeOpType, nd.OpType)
	n += sizeMessages(fNodeAttribute, nd.Attributes)
	n += sizeStringField(fNodeDocString, nd.DocString)
	n += sizeStringField(fNodeDomain, nd.Domain)
	return n
}

func (nd *Node) encode(e *encoder) {
	// Inputs may be empty strings (an omitted optional input): always written.
	for _, s := range nd.Inputs {
		e.buf = protowire.AppendTag(e.buf, fNodeInput, protowire.BytesType)
		e.buf = protowire.AppendString(e.buf, s)
	}
	for _, s := range nd.Outputs {
		e.buf = protowire.AppendTag(e.buf, fNodeOutput, protowire.BytesType)
		e.buf = protowire.AppendString(e.buf, s)
	}
	e.buf = appendStringField(e.buf, fNodeName, nd.Name)
	e.buf = appendStringField(e.buf, fNodeOpType, nd.OpType)
	encodeMessages(e, fNodeAttribute, nd.Attributes)
	e.buf = appendStringField(e.buf, fNodeDocString, nd.DocString)
	e.buf = appendStringField(e.buf, fNodeDomain, nd.Domain)
}

// The value field matching Type is always written, even when zero.
func (a *Attribute) size() int {
	n := sizeStringField(fAttrName, a.Name)
	switch a.Type {
	case AttrFloat:
		n += protowire.SizeTag(fAttrF) + protowire.SizeFixed32()
	case AttrInt:
		n += sizeVarintField(fAttrI, uint64(a.I))
	case AttrString:
		n += sizeBytesField(fAttrS, len(a.S))
	case AttrTensor:
		if a.T != nil {
			n += sizeMessageField(fAttrT, a.T.size())
		}
	case AttrGraph:
		if a.G != nil {
			n += sizeMessageField(fAttrG, a.G.size())
		}
	case AttrFloats:
		if len(a.Floats) > 0 {
			n += sizeBytesField(fAttrFloats, 4*len(a.Floats))
		}
	case AttrInts:
		if len(a.Ints) > 0 {
			n += sizeBytesField(fAttrInts, sizePackedVarints(a.Ints))
		}
	case AttrStrings:
		for _, s := range a.Strings {
			n += sizeBytesField(fAttrStrings, len(s))
		}
	}
	n += sizeVarintField(fAttrType, uint64(a.Type))
	return n
}

func (a *Attribute) encode(e *encoder) {
	e.buf = appendStringField(e.buf, fAttrName, a.Name)
	switch a.Type {
	case AttrFloat:
		e.buf = protowire.AppendTag(e.buf, fAttrF, protowire.Fixed32Type)
		e.buf = protowire.AppendFixed32(e.buf, math.Float32bits(a.F))
	case AttrInt:
		e.buf = appendVarintField(e.buf, fAttrI, uint64(a.I))
	case AttrString:
		e.buf = protowire.AppendTag(e.buf, fAttrS, protowire.BytesType)
		e.buf = protowire.AppendBytes(e.buf, a.S)
	case AttrTensor:
		if a.T != nil {
			e.message(fAttrT, a.T)
		}
	case AttrGraph:
		if a.G != nil {
			e.message(fAttrG, a.G)
		}
	case AttrFloats:
		if len(a.Floats) > 0 {
			e.buf = appendMessageHeader(e.buf, fAttrFloats, 4*len(a.Floats))
			for _, f := range a.Floats {
				e.buf = protowire.AppendFixed32(e.buf, math.Float32bits(f))
			}
		}
	case AttrInts:
		if len(a.Ints) > 0 {
			e.buf = appendPackedVarints(e.buf, fAttrInts, a.Ints)
		}
	case AttrStrings:
		for _, s := range a.Strings {
			e.buf = protowire.AppendTag(e.buf, fAttrStrings, protowire.BytesType)
			e.buf = protowire.AppendBytes(e.buf, s)
		}
	}
	e.buf = appendVarintField(e.buf, fAttrType, uint64(a.Type))
}

func (t *Tensor) size() int {
	n := 0
	if len(t.Dims) > 0 {
		n += sizeBytesField(fTensorDims, sizePackedVarints(t.Dims))
	}
	n += sizeVarintField(fTensorDataType, uint64(t.DataType))
	if len(t.FloatData) > 0 {
		n += sizeBytesField(fTensorFloatData, 4*len(t.FloatData))
	}
	if len(t.Int32Data) > 0 {
		n += sizeBytesField(fTensorInt32Data, sizePackedInt32s(t.Int32Data))
	}
	if len(t.Int64Data) > 0 {
		n += sizeBytesField(fTensorInt64Data, sizePackedVarints(t.Int64Data))
	}
	n += sizeStringField(fTensorName, t.Name)
	if t.RawData != nil {
		n += sizeBytesField(fTensorRawData, len(t.RawData))
	} else if t.Deferred != nil {
		n += sizeBytesField(fTensorRawData, t.DeferredLen)
	}
	n += sizeStringField(fTensorDocString, t.DocString)
	n += sizeMessages(fTensorExternalData, t.ExternalData)
	if t.DataLocation != LocationDefault {
		n += sizeVarintField(fTensorDataLocation, uint64(t.DataLocation))
	}
	return n
}

func (t *Tensor) encode(e *encoder) {
	if len(t.Dims) > 0 {
		e.buf = appendPackedVarints(e.buf, fTensorDims, t.Dims)
	}
	e.buf = appendVarintField(e.buf, fTensorDataType, uint64(t.DataType))
	if len(t.FloatData) > 0 {
		e.buf = appendMessageHeader(e.buf, fTensorFloatData, 4*len(t.FloatData))
		for _, f := range t.FloatData {
			e.buf = protowire.AppendFixed32(e.buf, math.Float32bits(f))
		}
	}
	if len(t.Int32Data) > 0 {
		e.buf = appendMessageHeader(e.buf, fTensorInt32Data, sizePackedInt32s(t.Int32Data))
		for _, v := range t.Int32Data {
			e.buf = protowire.AppendVarint(e.buf, uint64(int64(v)))
		}
	}
	if len(t.Int64Data) > 0 {
		e.buf = appendPackedVarints(e.buf, fTensorInt64Data, t.Int64Data)
	}
	e.buf = appendStringField(e.buf, fTensorName, t.Name)
	if t.RawData != nil {
		e.buf = protowire.AppendTag(e.buf, fTensorRawData, protowire.BytesType)
		e.buf = protowire.AppendVarint(e.buf, uint64(len(t.RawData)))
		e.bytes(t.RawData)
	} else if t.Deferred != nil {
		e.buf = protowire.AppendTag(e.buf, fTensorRawData, protowire.BytesType)
		e.buf = protowire.AppendVarint(e.buf, uint64(t.DeferredLen))
		if e.err != nil {
			return
		}
		raw, err := t.Deferred()
		switch {
		case err != nil:
			e.err = err
		case len(raw) != t.DeferredLen:
			e.err = fmt.Errorf("onnxpb: tensor %q: deferred data has %d bytes, declared %d", t.Name, len(raw), t.DeferredLen)
		default:
			e.bytes(raw)
		}
	}
	e.buf = appendStringField(e.buf, fTensorDocString, t.DocString)
	encodeMessages(e, fTensorExternalData, t.ExternalData)
	if t.DataLocation != LocationDefault {
		e.buf = appendVarintField(e.buf, fTensorDataLocation, uint64(t.DataLocation))
	}
}

// ValueInfo nests TypeProto { tensor_type { elem_type, shape { dim... } } }.
func (v *ValueInfo) tensorTypeSize() int {
	n := sizeVarintField(fTensorElemType, uint64(v.ElemType))
	if v.HasShape {
		n += sizeMessageField(fTensorShape, v.shapeSize())
	}
	return n
}

func (v *ValueInfo) shapeSize() int {
	return sizeMessages(fShapeDim, v.Shape)
}

func (d Dim) size() int {
	if d.Param != "" {
		return sizeBytesField(fDimParam, len(d.Param))
	}
	return sizeVarintField(fDimValue, uint64(d.Value))
}

func (d Dim) encode(e *encoder) {
	if d.Param != "" {
		e.buf = protowire.AppendTag(e.buf, fDimParam, protowire.BytesType)
		e.buf = protowire.AppendString(e.buf, d.Param)
	} else {
		e.buf = appendVarintField(e.buf, fDimValue, uint64(d.Value))
	}
}

func (v *ValueInfo) size() int {
	n := sizeStringField(fValueName, v.Name)
	n += sizeMessageField(fValueType, sizeMessageField(fTypeTensorType, v.tensorTypeSize()))
	n += sizeStringField(fValueDocString, v.DocString)
	return n
}

func (v *ValueInfo) encode(e *encoder) {
	e.buf = appendStringField(e.buf, fValueName, v.Name)
	tt := v.tensorTypeSize()
	e.buf = appendMessageHeader(e.buf, fValueType, sizeMessageField(fTypeTensorType, tt))
	e.buf = appendMessageHeader(e.buf, fTypeTensorType, tt)
	e.buf = appendVarintField(e.buf, fTensorElemType, uint64(v.ElemType))
	if v.HasShape {
		e.buf = appendMessageHeader(e.buf, fTensorShape, v.shapeSize())
		encodeMessages(e, fShapeDim, v.Shape)
	}
	e.buf = appendStringField(e.buf, fValueDocString, v.DocString)
}

// sizedMessage is a message type that encodes itself after a header that
// carries its size.
type sizedMessage interface {
	size() int
	encode(e *encoder)
}

// message writes m as field num: the header with m's size, then m.
func (e *encoder) message(num protowire.Number, m sizedMessage) {
	e.buf = appendMessageHeader(e.buf, num, m.size())
	m.encode(e)
}

// encodeMessages writes each of ms as a repeated field num.
func encodeMessages[M sizedMessage](e *encoder, num protowire.Number, ms []M) {
	for _, m := range ms {
		e.message(num, m)
	}
}

// sizeMessages is the encoded size of ms as a repeated field num.
func sizeMessages[M sizedMessage](num protowire.Number, ms []M) int {
	n := 0
	for _, m := range ms {
		n += sizeMessageField(num, m.size())
	}
	return n
}

// Wire helpers. Empty strings are omitted (proto2 optional semantics: absent
// reads back as empty).

func sizeVarintField(num protowire.Number, v uint64) int {
	return protowire.SizeTag(num) + protowire.SizeVarint(v)
}

func sizeBytesField(num protowire.Number, n int) int {
	return protowire.SizeTag(num) + protowire.SizeBytes(n)
}

func sizeStringField(num protowire.Number, s string) int {
	if s == "" {
		return 0
	}
	return sizeBytesField(num, len(s))
}

func sizeMessageField(num protowire.Number, n int) int { return sizeBytesField(num, n) }

func sizePackedVarints(v []int64) int {
	n := 0
	for _, x := range v {
		n += protowire.SizeVarint(uint64(x))
	}
	return n
}

func sizePackedInt32s(v []int32) int {
	n := 0
	for _, x := range v {
		n += protowire.SizeVarint(uint64(int64(x)))
	}
	return n
}

func appendVarintField(b []byte, num protowire.Number, v uint64) []byte {
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

func appendStringField(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func appendMessageHeader(b []byte, num protowire.Number, n int) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendVarint(b, uint64(n))
}

func appendPackedVarints(b []byte, num protowire.Number, v []int64) []byte {
	b = appendMessageHeader(b, num, sizePackedVarints(v))
	for _, x := range v {
		b = protowire.AppendVarint(b, uint64(x))
	}
	return b
}
