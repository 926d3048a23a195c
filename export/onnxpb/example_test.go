package onnxpb_test

import (
	"bytes"
	"fmt"

	"github.com/bitrun/bitrun/export/onnxpb"
)

// A one-node model, serialized and read back; ReadHeader gets the metadata
// without parsing the graph.
func Example() {
	m := &onnxpb.Model{
		IRVersion:     8,
		OpsetImport:   []onnxpb.OpsetID{{Version: 17}},
		ProducerName:  "example",
		MetadataProps: []onnxpb.StringStringEntry{{Key: "bitrun.resolution", Value: "128"}},
		Graph: &onnxpb.Graph{
			Name:  "relu",
			Nodes: []*onnxpb.Node{{OpType: "Relu", Inputs: []string{"x"}, Outputs: []string{"y"}}},
			Inputs: []*onnxpb.ValueInfo{{Name: "x", ElemType: onnxpb.Float, HasShape: true,
				Shape: []onnxpb.Dim{{Param: "N"}, {Value: 4}}}},
			Outputs: []*onnxpb.ValueInfo{{Name: "y", ElemType: onnxpb.Float, HasShape: true,
				Shape: []onnxpb.Dim{{Param: "N"}, {Value: 4}}}},
		},
	}
	b, err := m.Marshal()
	if err != nil {
		fmt.Println(err)
		return
	}
	back, err := onnxpb.Unmarshal(b)
	if err != nil {
		fmt.Println(err)
		return
	}
	h, _ := onnxpb.ReadHeader(bytes.NewReader(b))
	fmt.Println(len(b), "bytes;", back.Graph.Nodes[0].OpType, "node; opset", back.Opset(""))
	fmt.Println("resolution:", h.Metadata()["bitrun.resolution"], "graph bytes:", h.GraphBytes)
	// Output:
	// 107 bytes; Relu node; opset 17
	// resolution: 128 graph bytes: 64
}
