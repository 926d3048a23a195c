package onnxtest

import (
	"encoding/binary"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"

	"google.golang.org/protobuf/encoding/protowire"
)

// Attr is a node attribute: Ints for a list of ints, else Int.
type Attr struct {
	Name  string
	Int   *int64
	Ints  []int64
	Float *float32
}

// Node is one graph node.
type Node struct {
	Op      string
	Inputs  []string
	Outputs []string
	Attrs   []Attr
}

// Value is a graph input or output: float32 tensor; a negative dim becomes a
// symbolic dim named "d<index>" (or Params[i] when set).
type Value struct {
	Name   string
	Shape  []int64
	Params []string
}

// Init is a float32 initializer.
type Init struct {
	Name string
	Dims []int64
	Data []float32
}

// Model is a single-graph ONNX model.
type Model struct {
	Opset    int64 // default 13
	Nodes    []Node
	Inputs   []Value
	Outputs  []Value
	Inits    []Init
	Metadata map[string]string
}

// ONNX field numbers (onnx.proto3).
const (
	modelIRVersion = 1
	modelProducer  = 2
	modelGraph     = 7
	modelOpset     = 8
	modelMetadata  = 14
	graphNode      = 1
	graphName      = 2
	graphInit      = 5
	graphInput     = 11
	graphOutput    = 12
	nodeInput      = 1
	nodeOutput     = 2
	nodeName       = 3
	nodeOp         = 4
	nodeAttr       = 5
	attrName       = 1
	attrF          = 2
	attrI          = 3
	attrInts       = 8
	attrType       = 20
	tensorDims     = 1
	tensorType     = 2
	tensorName     = 8
	tensorRaw      = 9
	elemFloat      = 1
)

func bytesField(b []byte, num protowire.Number, v []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

func stringField(b []byte, num protowire.Number, v string) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, v)
}

func varintField(b []byte, num protowire.Number, v uint64) []byte {
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

// Marshal encodes the model as an ONNX ModelProto.
func (m Model) Marshal() []byte {
	opset := m.Opset
	if opset == 0 {
		opset = 13
	}
	var g []byte
	for i, n := range m.Nodes {
		var nb []byte
		for _, in := range n.Inputs {
			nb = stringField(nb, nodeInput, in)
		}
		for _, out := range n.Outputs {
			nb = stringField(nb, nodeOutput, out)
		}
		nb = stringField(nb, nodeName, fmt.Sprintf("%s_%d", n.Op, i))
		nb = stringField(nb, nodeOp, n.Op)
		for _, a := range n.Attrs {
			var ab []byte
			ab = stringField(ab, attrName, a.Name)
			switch {
			case a.Float != nil:
				ab = protowire.AppendTag(ab, attrF, protowire.Fixed32Type)
				ab = protowire.AppendFixed32(ab, math.Float32bits(*a.Float))
				ab = varintField(ab, attrType, 1)
			case a.Ints != nil:
				for _, v := range a.Ints {
					ab = varintField(ab, attrInts, uint64(v))
				}
				ab = varintField(ab, attrType, 7)
			default:
				var v int64
				if a.Int != nil {
					v = *a.Int
				}
				ab = varintField(ab, attrI, uint64(v))
				ab = varintField(ab, attrType, 2)
			}
			nb = bytesField(nb, nodeAttr, ab)
		}
		g = bytesField(g, graphNode, nb)
	}
	g = stringField(g, graphName, "onnxtest")
	for _, in := range m.Inits {
		var tb []byte
		for _, d := range in.Dims {
			tb = varintField(tb, tensorDims, uint64(d))
		}
		tb = varintField(tb, tensorType, elemFloat)
		tb = stringField(tb, tensorName, in.Name)
		raw := make([]byte, 4*len(in.Data))
		for i, v := range in.Data {
			binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
		}
		tb = bytesField(tb, tensorRaw, raw)
		g = bytesField(g, graphInit, tb)
	}
	for _, v := range m.Inputs {
		g = bytesField(g, graphInput, valueInfo(v))
	}
	for _, v := range m.Outputs {
		g = bytesField(g, graphOutput, valueInfo(v))
	}

	var b []byte
	b = varintField(b, modelIRVersion, 8)
	b = stringField(b, modelProducer, "bitrun-onnxtest")
	b = bytesField(b, modelGraph, g)
	var ob []byte
	ob = stringField(ob, 1, "")
	ob = varintField(ob, 2, uint64(opset))
	b = bytesField(b, modelOpset, ob)
	keys := slices.Sorted(maps.Keys(m.Metadata))
	for _, k := range keys {
		var eb []byte
		eb = stringField(eb, 1, k)
		eb = stringField(eb, 2, m.Metadata[k])
		b = bytesField(b, modelMetadata, eb)
	}
	return b
}

// valueInfo encodes a ValueInfoProto of a float tensor.
func valueInfo(v Value) []byte {
	var shape []byte
	for i, d := range v.Shape {
		var db []byte
		if d >= 0 {
			db = varintField(db, 1, uint64(d))
		} else {
			name := fmt.Sprintf("d%d", i)
			if i < len(v.Params) && v.Params[i] != "" {
				name = v.Params[i]
			}
			db = stringField(db, 2, name)
		}
		shape = bytesField(shape, 1, db)
	}
	var tt []byte
	tt = varintField(tt, 1, elemFloat)
	tt = bytesField(tt, 2, shape)
	var typ []byte
	typ = bytesField(typ, 1, tt)
	var vb []byte
	vb = stringField(vb, 1, v.Name)
	vb = bytesField(vb, 2, typ)
	return vb
}

// Write marshals the model to dir/name and returns the path.
func (m Model) Write(dir, name string) (string, error) {
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, m.Marshal(), 0o644); err != nil {
		return "", fmt.Errorf("onnxtest: %w", err)
	}
	return path, nil
}

// Classifier is a tiny image classifier: logits = mean over H,W of x (per
// channel) times W plus B. Input "pixels" [N,C,H,W] (Shape overrides, e.g.
// with fixed dims), output "logits" [N,K]. W is C×K row-major.
type Classifier struct {
	C, K     int
	W, B     []float32
	Shape    []int64 // input shape; default {-1, C, -1, -1}
	Metadata map[string]string
}

// Model builds the ONNX model of the classifier.
func (c Classifier) Model() Model {
	shape := c.Shape
	if shape == nil {
		shape = []int64{-1, int64(c.C), -1, -1}
	}
	zero := int64(0)
	return Model{
		Opset: 13,
		Nodes: []Node{
			{Op: "ReduceMean", Inputs: []string{"pixels"}, Outputs: []string{"pooled"},
				Attrs: []Attr{{Name: "axes", Ints: []int64{2, 3}}, {Name: "keepdims", Int: &zero}}},
			{Op: "MatMul", Inputs: []string{"pooled", "W"}, Outputs: []string{"mm"}},
			{Op: "Add", Inputs: []string{"mm", "B"}, Outputs: []string{"logits"}},
		},
		Inputs:   []Value{{Name: "pixels", Shape: shape, Params: []string{"batch", "", "height", "width"}}},
		Outputs:  []Value{{Name: "logits", Shape: []int64{-1, int64(c.K)}, Params: []string{"batch"}}},
		Inits:    []Init{{Name: "W", Dims: []int64{int64(c.C), int64(c.K)}, Data: c.W}, {Name: "B", Dims: []int64{int64(c.K)}, Data: c.B}},
		Metadata: c.Metadata,
	}
}

// Forward computes the classifier's logits in Go for an NCHW batch.
func (c Classifier) Forward(x []float32, n, h, w int) []float32 {
	out := make([]float32, n*c.K)
	hw := h * w
	for i := 0; i < n; i++ {
		for k := 0; k < c.K; k++ {
			acc := float64(c.B[k])
			for ch := 0; ch < c.C; ch++ {
				var s float64
				base := (i*c.C + ch) * hw
				for _, v := range x[base : base+hw] {
					s += float64(v)
				}
				acc += s / float64(hw) * float64(c.W[ch*c.K+k])
			}
			out[i*c.K+k] = float32(acc)
		}
	}
	return out
}
