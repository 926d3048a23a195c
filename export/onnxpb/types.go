package onnxpb

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
)

// DataType is TensorProto.DataType: the element type of a tensor.
type DataType int32

// Element types (the subset bitrun writes; any other value reads back as is).
const (
	Undefined DataType = 0
	Float     DataType = 1
	Uint8     DataType = 2
	Int8      DataType = 3
	Int32     DataType = 6
	Int64     DataType = 7
	String    DataType = 8
	Bool      DataType = 9
	Float16   DataType = 10
	Double    DataType = 11
)

// elemSize is the byte size of one element in raw_data, 0 when unknown.
func (d DataType) elemSize() int {
	switch d {
	case Uint8, Int8, Bool:
		return 1
	case Float16:
		return 2
	case Float, Int32:
		return 4
	case Int64, Double:
		return 8
	}
	return 0
}

// name is the ONNX name of the types inline decodes, for error messages.
func (d DataType) name() string {
	switch d {
	case Float:
		return "FLOAT"
	case Int64:
		return "INT64"
	}
	return strconv.Itoa(int(d))
}

// DataLocation is TensorProto.DataLocation.
type DataLocation int32

// Where a tensor's bytes live.
const (
	LocationDefault  DataLocation = 0 // inside the message (raw_data or typed fields)
	LocationExternal DataLocation = 1 // in a side file named by ExternalData
)

// AttributeType is AttributeProto.AttributeType.
type AttributeType int32

// Attribute kinds.
const (
	AttrUndefined AttributeType = 0
	AttrFloat     AttributeType = 1
	AttrInt       AttributeType = 2
	AttrString    AttributeType = 3
	AttrTensor    AttributeType = 4
	AttrGraph     AttributeType = 5
	AttrFloats    AttributeType = 6
	AttrInts      AttributeType = 7
	AttrStrings   AttributeType = 8
)

// Model is ModelProto: the top-level container of an .onnx file.
type Model struct {
	IRVersion       int64
	OpsetImport     []OpsetID
	ProducerName    string
	ProducerVersion string
	Domain          string
	ModelVersion    int64
	DocString       string
	Graph           *Graph
	MetadataProps   []StringStringEntry
}

// OpsetID is OperatorSetIdProto. An empty Domain is the default ONNX domain.
type OpsetID struct {
	Domain  string
	Version int64
}

// StringStringEntry is StringStringEntryProto (a key/value pair).
type StringStringEntry struct {
	Key, Value string
}

// Graph is GraphProto.
type Graph struct {
	Name         string
	Nodes        []*Node
	Initializers []*Tensor
	DocString    string
	Inputs       []*ValueInfo
	Outputs      []*ValueInfo
	ValueInfo    []*ValueInfo
}

// Node is NodeProto: one operator application.
type Node struct {
	Inputs     []string
	Outputs    []string
	Name       string
	OpType     string
	Domain     string
	Attributes []*Attribute
	DocString  string
}

// Attribute is AttributeProto. Type selects which value field is meaningful.
type Attribute struct {
	Name    string
	Type    AttributeType
	F       float32
	I       int64
	S       []byte
	T       *Tensor
	G       *Graph
	Floats  []float32
	Ints    []int64
	Strings [][]byte
}

// Tensor is TensorProto. Writers set RawData (little-endian, fixed width);
// readers also accept FloatData, Int32Data and Int64Data. A tensor whose
// DataLocation is LocationExternal has its bytes in the file named by the
// "location" entry of ExternalData (relative to the model's folder), at
// "offset" for "length" bytes.
type Tensor struct {
	Dims         []int64
	DataType     DataType
	FloatData    []float32
	Int32Data    []int32
	Int64Data    []int64
	Name         string
	DocString    string
	RawData      []byte
	ExternalData []StringStringEntry
	DataLocation DataLocation

	// Deferred, when set and RawData is nil, produces raw_data at write
	// time; it must return exactly DeferredLen bytes. Writers use it to
	// stream weights computed on the fly without holding them all. Its error
	// aborts the write. Readers never set it.
	Deferred    func() ([]byte, error)
	DeferredLen int
}

// ValueInfo is ValueInfoProto restricted to tensor types: a named value with
// an element type and an optional shape.
type ValueInfo struct {
	Name      string
	ElemType  DataType
	HasShape  bool  // false: rank unknown
	Shape     []Dim // when HasShape
	DocString string
}

// Dim is TensorShapeProto.Dimension: a fixed size (Value) or a symbolic one
// (Param, e.g. "N"). A Dim with neither is an unknown dimension.
type Dim struct {
	Value int64
	Param string
}

// FloatTensor returns a FLOAT tensor holding data (copied, little-endian raw_data).
func FloatTensor(name string, dims []int64, data []float32) *Tensor {
	return &Tensor{Name: name, DataType: Float, Dims: append([]int64(nil), dims...), RawData: Float32Bytes(data)}
}

// Int64Tensor returns an INT64 tensor holding data.
func Int64Tensor(name string, dims []int64, data []int64) *Tensor {
	raw := make([]byte, 8*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint64(raw[8*i:], uint64(v))
	}
	return &Tensor{Name: name, DataType: Int64, Dims: append([]int64(nil), dims...), RawData: raw}
}

// Float32Bytes encodes data as little-endian IEEE 754 bytes.
func Float32Bytes(data []float32) []byte {
	raw := make([]byte, 4*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
	}
	return raw
}

// NumElements is the product of Dims (1 for a scalar), or an error when a
// dimension is negative or the product overflows.
func (t *Tensor) NumElements() (int64, error) {
	n := int64(1)
	for _, d := range t.Dims {
		if d < 0 {
			return 0, fmt.Errorf("%w: tensor %q has negative dimension %d", ErrInvalid, t.Name, d)
		}
		if d != 0 && n > math.MaxInt64/d {
			return 0, fmt.Errorf("%w: tensor %q: element count overflows", ErrInvalid, t.Name)
		}
		n *= d
	}
	return n, nil
}

// Floats decodes a FLOAT tensor stored inline (RawData or FloatData). External
// tensors return an error wrapping ErrExternal.
func (t *Tensor) Floats() ([]float32, error) {
	return inline(t, Float, t.FloatData, "floats", func(b []byte) float32 {
		return math.Float32frombits(binary.LittleEndian.Uint32(b))
	})
}

// Int64s decodes an INT64 tensor stored inline.
func (t *Tensor) Int64s() ([]int64, error) {
	return inline(t, Int64, t.Int64Data, "int64s", func(b []byte) int64 {
		return int64(binary.LittleEndian.Uint64(b))
	})
}

// inline decodes the values of a tensor of data type want stored inline:
// from RawData with get (one element of want's size), else a copy of typed
// (the FloatData or Int64Data field). what names the values in errors.
func inline[T any](t *Tensor, want DataType, typed []T, what string, get func([]byte) T) ([]T, error) {
	if t.DataType != want {
		return nil, fmt.Errorf("%w: tensor %q has data type %d, not %s", ErrInvalid, t.Name, t.DataType, want.name())
	}
	if t.DataLocation == LocationExternal {
		return nil, fmt.Errorf("%w: tensor %q", ErrExternal, t.Name)
	}
	n, err := t.NumElements()
	if err != nil {
		return nil, err
	}
	if t.RawData != nil {
		size := want.elemSize()
		if int64(len(t.RawData)) != int64(size)*n {
			return nil, fmt.Errorf("%w: tensor %q: %d raw bytes for %d %s", ErrInvalid, t.Name, len(t.RawData), n, what)
		}
		out := make([]T, n)
		for i := range out {
			out[i] = get(t.RawData[size*i:])
		}
		return out, nil
	}
	if int64(len(typed)) != n {
		return nil, fmt.Errorf("%w: tensor %q: %d %s for %d elements", ErrInvalid, t.Name, len(typed), what, n)
	}
	return append([]T(nil), typed...), nil
}

// External describes where an external tensor's bytes are: the location
// (relative path), offset and length (-1 when the entry is absent: the rest
// of the file).
func (t *Tensor) External() (location string, offset, length int64, err error) {
	if t.DataLocation != LocationExternal {
		return "", 0, 0, fmt.Errorf("%w: tensor %q is not external", ErrInvalid, t.Name)
	}
	length = -1
	for _, e := range t.ExternalData {
		switch e.Key {
		case "location":
			location = e.Value
		case "offset", "length":
			v, perr := strconv.ParseInt(e.Value, 10, 64)
			if perr != nil || v < 0 {
				return "", 0, 0, fmt.Errorf("%w: tensor %q: external %s %q", ErrInvalid, t.Name, e.Key, e.Value)
			}
			if e.Key == "offset" {
				offset = v
			} else {
				length = v
			}
		}
	}
	if location == "" {
		return "", 0, 0, fmt.Errorf("%w: tensor %q: external data without location", ErrInvalid, t.Name)
	}
	return location, offset, length, nil
}

// Metadata returns the metadata_props as a map (a later duplicate key wins).
func (m *Model) Metadata() map[string]string {
	out := make(map[string]string, len(m.MetadataProps))
	for _, e := range m.MetadataProps {
		out[e.Key] = e.Value
	}
	return out
}

// Opset is the version imported for domain ("" is the default ONNX domain;
// "ai.onnx" is treated the same), 0 when not imported.
func (m *Model) Opset(domain string) int64 {
	if domain == "ai.onnx" {
		domain = ""
	}
	for _, o := range m.OpsetImport {
		d := o.Domain
		if d == "ai.onnx" {
			d = ""
		}
		if d == domain {
			return o.Version
		}
	}
	return 0
}

// Attr returns the node's attribute named name, or nil.
func (n *Node) Attr(name string) *Attribute {
	for _, a := range n.Attributes {
		if a.Name == name {
			return a
		}
	}
	return nil
}

// IntAttr, FloatAttr, IntsAttr, StringAttr and TensorAttr build attributes.
func IntAttr(name string, v int64) *Attribute { return &Attribute{Name: name, Type: AttrInt, I: v} }

// FloatAttr builds a FLOAT attribute.
func FloatAttr(name string, v float32) *Attribute {
	return &Attribute{Name: name, Type: AttrFloat, F: v}
}

// IntsAttr builds an INTS attribute.
func IntsAttr(name string, v ...int64) *Attribute {
	return &Attribute{Name: name, Type: AttrInts, Ints: append([]int64(nil), v...)}
}

// StringAttr builds a STRING attribute.
func StringAttr(name, v string) *Attribute {
	return &Attribute{Name: name, Type: AttrString, S: []byte(v)}
}

// TensorAttr builds a TENSOR attribute.
func TensorAttr(name string, t *Tensor) *Attribute {
	return &Attribute{Name: name, Type: AttrTensor, T: t}
}
