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
	return m.appendTo(make([]byte, 0, n)), nil
}

// WriteTo writes the serialized model to w.
func (m *Model) WriteTo(w io.Writer) (int64, error) {
	b, err := m.Marshal()
	if err != nil {
		return 0, err
	}
	n, err := w.Write(b)
	return int64(n), err
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
	for _, o := range m.OpsetImport {
		n += sizeMessageField(fModelOpsetImport, o.size())
	}
	for _, e := range m.MetadataProps {
		n += sizeMessageField(fModelMetadataProps, e.size())
	}
	return n
}

func (m *Model) appendTo(b []byte) []byte {
	b = appendVarintField(b, fModelIRVersion, uint64(m.IRVersion))
	b = appendStringField(b, fModelProducerName, m.ProducerName)
	b = appendStringField(b, fModelProducerVersion, m.ProducerVersion)
	b = appendStringField(b, fModelDomain, m.Domain)
	if m.ModelVersion != 0 {
		b = appendVarintField(b, fModelModelVersion, uint64(m.ModelVersion))
	}
	b = appendStringField(b, fModelDocString, m.DocString)
	if m.Graph != nil {
		b = appendMessageHeader(b, fModelGraph, m.Graph.size())
		b = m.Graph.appendTo(b)
	}
	for _, o := range m.OpsetImport {
		b = appendMessageHeader(b, fModelOpsetImport, o.size())
		b = o.appendTo(b)
	}
	for _, e := range m.MetadataProps {
		b = appendMessageHeader(b, fModelMetadataProps, e.size())
		b = e.appendTo(b)
	}
	return b
}

func (o OpsetID) size() int {
	return sizeStringField(fOpsetDomain, o.Domain) + sizeVarintField(fOpsetVersion, uint64(o.Version))
}

func (o OpsetID) appendTo(b []byte) []byte {
	b = appendStringField(b, fOpsetDomain, o.Domain)
	return appendVarintField(b, fOpsetVersion, uint64(o.Version))
}

func (e StringStringEntry) size() int {
	return sizeStringField(fEntryKey, e.Key) + sizeStringField(fEntryValue, e.Value)
}

func (e StringStringEntry) appendTo(b []byte) []byte {
	b = appendStringField(b, fEntryKey, e.Key)
	return appendStringField(b, fEntryValue, e.Value)
}

func (g *Graph) size() int {
	n := 0
	for _, nd := range g.Nodes {
		n += sizeMessageField(fGraphNode, nd.size())
	}
	n += sizeStringField(fGraphName, g.Name)
	for _, t := range g.Initializers {
		n += sizeMessageField(fGraphInitializer, t.size())
	}
	n += sizeStringField(fGraphDocString, g.DocString)
	for _, v := range g.Inputs {
		n += sizeMessageField(fGraphInput, v.size())
	}
	for _, v := range g.Outputs {
		n += sizeMessageField(fGraphOutput, v.size())
	}
	for _, v := range g.ValueInfo {
		n += sizeMessageField(fGraphValueInfo, v.size())
	}
	return n
}

func (g *Graph) appendTo(b []byte) []byte {
	for _, nd := range g.Nodes {
		b = appendMessageHeader(b, fGraphNode, nd.size())
		b = nd.appendTo(b)
	}
	b = appendStringField(b, fGraphName, g.Name)
	for _, t := range g.Initializers {
		b = appendMessageHeader(b, fGraphInitializer, t.size())
		b = t.appendTo(b)
	}
	b = appendStringField(b, fGraphDocString, g.DocString)
	for _, v := range g.Inputs {
		b = appendMessageHeader(b, fGraphInput, v.size())
		b = v.appendTo(b)
	}
	for _, v := range g.Outputs {
		b = appendMessageHeader(b, fGraphOutput, v.size())
		b = v.appendTo(b)
	}
	for _, v := range g.ValueInfo {
		b = appendMessageHeader(b, fGraphValueInfo, v.size())
		b = v.appendTo(b)
	}
	return b
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
	for _, a := range nd.Attributes {
		n += sizeMessageField(fNodeAttribute, a.size())
	}
	n += sizeStringField(fNodeDocString, nd.DocString)
	n += sizeStringField(fNodeDomain, nd.Domain)
	return n
}

func (nd *Node) appendTo(b []byte) []byte {
	// Inputs may be empty strings (an omitted optional input): always written.
	for _, s := range nd.Inputs {
		b = protowire.AppendTag(b, fNodeInput, protowire.BytesType)
		b = protowire.AppendString(b, s)
	}
	for _, s := range nd.Outputs {
		b = protowire.AppendTag(b, fNodeOutput, protowire.BytesType)
		b = protowire.AppendString(b, s)
	}
	b = appendStringField(b, fNodeName, nd.Name)
	b = appendStringField(b, fNodeOpType, nd.OpType)
	for _, a := range nd.Attributes {
		b = appendMessageHeader(b, fNodeAttribute, a.size())
		b = a.appendTo(b)
	}
	b = appendStringField(b, fNodeDocString, nd.DocString)
	b = appendStringField(b, fNodeDomain, nd.Domain)
	return b
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

func (a *Attribute) appendTo(b []byte) []byte {
	b = appendStringField(b, fAttrName, a.Name)
	switch a.Type {
	case AttrFloat:
		b = protowire.AppendTag(b, fAttrF, protowire.Fixed32Type)
		b = protowire.AppendFixed32(b, math.Float32bits(a.F))
	case AttrInt:
		b = appendVarintField(b, fAttrI, uint64(a.I))
	case AttrString:
		b = protowire.AppendTag(b, fAttrS, protowire.BytesType)
		b = protowire.AppendBytes(b, a.S)
	case AttrTensor:
		if a.T != nil {
			b = appendMessageHeader(b, fAttrT, a.T.size())
			b = a.T.appendTo(b)
		}
	case AttrGraph:
		if a.G != nil {
			b = appendMessageHeader(b, fAttrG, a.G.size())
			b = a.G.appendTo(b)
		}
	case AttrFloats:
		if len(a.Floats) > 0 {
			b = appendMessageHeader(b, fAttrFloats, 4*len(a.Floats))
			for _, f := range a.Floats {
				b = protowire.AppendFixed32(b, math.Float32bits(f))
			}
		}
	case AttrInts:
		if len(a.Ints) > 0 {
			b = appendPackedVarints(b, fAttrInts, a.Ints)
		}
	case AttrStrings:
		for _, s := range a.Strings {
			b = protowire.AppendTag(b, fAttrStrings, protowire.BytesType)
			b = protowire.AppendBytes(b, s)
		}
	}
	return appendVarintField(b, fAttrType, uint64(a.Type))
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
	}
	n += sizeStringField(fTensorDocString, t.DocString)
	for _, e := range t.ExternalData {
		n += sizeMessageField(fTensorExternalData, e.size())
	}
	if t.DataLocation != LocationDefault {
		n += sizeVarintField(fTensorDataLocation, uint64(t.DataLocation))
	}
	return n
}

func (t *Tensor) appendTo(b []byte) []byte {
	if len(t.Dims) > 0 {
		b = appendPackedVarints(b, fTensorDims, t.Dims)
	}
	b = appendVarintField(b, fTensorDataType, uint64(t.DataType))
	if len(t.FloatData) > 0 {
		b = appendMessageHeader(b, fTensorFloatData, 4*len(t.FloatData))
		for _, f := range t.FloatData {
			b = protowire.AppendFixed32(b, math.Float32bits(f))
		}
	}
	if len(t.Int32Data) > 0 {
		b = appendMessageHeader(b, fTensorInt32Data, sizePackedInt32s(t.Int32Data))
		for _, v := range t.Int32Data {
			b = protowire.AppendVarint(b, uint64(int64(v)))
		}
	}
	if len(t.Int64Data) > 0 {
		b = appendPackedVarints(b, fTensorInt64Data, t.Int64Data)
	}
	b = appendStringField(b, fTensorName, t.Name)
	if t.RawData != nil {
		b = protowire.AppendTag(b, fTensorRawData, protowire.BytesType)
		b = protowire.AppendBytes(b, t.RawData)
	}
	b = appendStringField(b, fTensorDocString, t.DocString)
	for _, e := range t.ExternalData {
		b = appendMessageHeader(b, fTensorExternalData, e.size())
		b = e.appendTo(b)
	}
	if t.DataLocation != LocationDefault {
		b = appendVarintField(b, fTensorDataLocation, uint64(t.DataLocation))
	}
	return b
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
	n := 0
	for _, d := range v.Shape {
		n += sizeMessageField(fShapeDim, d.size())
	}
	return n
}

func (d Dim) size() int {
	if d.Param != "" {
		return sizeBytesField(fDimParam, len(d.Param))
	}
	return sizeVarintField(fDimValue, uint64(d.Value))
}

func (v *ValueInfo) size() int {
	n := sizeStringField(fValueName, v.Name)
	n += sizeMessageField(fValueType, sizeMessageField(fTypeTensorType, v.tensorTypeSize()))
	n += sizeStringField(fValueDocString, v.DocString)
	return n
}

func (v *ValueInfo) appendTo(b []byte) []byte {
	b = appendStringField(b, fValueName, v.Name)
	tt := v.tensorTypeSize()
	b = appendMessageHeader(b, fValueType, sizeMessageField(fTypeTensorType, tt))
	b = appendMessageHeader(b, fTypeTensorType, tt)
	b = appendVarintField(b, fTensorElemType, uint64(v.ElemType))
	if v.HasShape {
		b = appendMessageHeader(b, fTensorShape, v.shapeSize())
		for _, d := range v.Shape {
			b = appendMessageHeader(b, fShapeDim, d.size())
			if d.Param != "" {
				b = protowire.AppendTag(b, fDimParam, protowire.BytesType)
				b = protowire.AppendString(b, d.Param)
			} else {
				b = appendVarintField(b, fDimValue, uint64(d.Value))
			}
		}
	}
	return appendStringField(b, fValueDocString, v.DocString)
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
