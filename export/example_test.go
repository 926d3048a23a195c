package export_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/bitrun/bitrun/export"
	"github.com/bitrun/bitrun/export/meta"
	"github.com/bitrun/bitrun/export/onnxpb"
	"github.com/bitrun/bitrun/model"
)

// Export a small network and read its metadata back without loading the
// graph.
func ExampleExport() {
	cfg, _ := model.Arch("tiny", 3)
	params := model.Init(cfg, 1) // a checkpoint would come from model.Load
	dir, _ := os.MkdirTemp("", "export-example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "tiny.onnx")

	res, err := export.Export(context.Background(), path, cfg, params, export.Options{
		Labels:     []string{"cat", "dog", "bird"},
		Resolution: 64,
		Version:    "v1.0.0",
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	f, _ := os.Open(res.Path)
	defer f.Close()
	h, _ := onnxpb.ReadHeader(f)
	m, _ := meta.Parse(h.Metadata())
	fmt.Println("producer:", h.ProducerName, "opset:", h.OpsetImport[0].Version)
	fmt.Println("arch:", m.Arch, "classes:", m.Classes, "labels:", m.Labels)
	fmt.Println("resolution:", m.Resolution, "mean:", m.Mean, "std:", m.Std, "layout:", m.Layout)
	fmt.Println("external data:", res.DataPath != "")
	// Output:
	// producer: bitrun opset: 17
	// arch: tiny classes: 3 labels: [cat dog bird]
	// resolution: 64 mean: [0.5 0.5 0.5] std: [0.5 0.5 0.5] layout: NCHW
	// external data: false
}

// Build returns the ONNX message itself; here, its inputs and outputs.
func ExampleBuild() {
	cfg, _ := model.Arch("tiny", 10)
	m, err := export.Build(cfg, model.Init(cfg, 1), export.Options{Opset: 21})
	if err != nil {
		fmt.Println(err)
		return
	}
	dims := func(v *onnxpb.ValueInfo) []string {
		var s []string
		for _, d := range v.Shape {
			if d.Param != "" {
				s = append(s, d.Param)
			} else {
				s = append(s, fmt.Sprint(d.Value))
			}
		}
		return s
	}
	for _, v := range m.Graph.Inputs {
		fmt.Println("input", v.Name, dims(v))
	}
	for _, v := range m.Graph.Outputs {
		fmt.Println("output", v.Name, dims(v))
	}
	// Output:
	// input image [N 3 H W]
	// output logits [N 10]
	// output features [N 256]
	// output probabilities [N 10]
}
