package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/bitrun/bitrun/export/onnxpb"
)

// onnxReport is what `bitrun inspect` prints for an ONNX model.
type onnxReport struct {
	File       string            `json:"file"`
	Format     string            `json:"format"` // "onnx"
	Size       int64             `json:"size"`
	SHA256     string            `json:"sha256"`
	IRVersion  int64             `json:"ir_version"`
	Opsets     map[string]int64  `json:"opsets"`
	Producer   string            `json:"producer"`
	Nodes      int               `json:"nodes"`
	Parameters int64             `json:"parameters"` // elements of the initializers
	Inputs     []onnxValue       `json:"inputs"`
	Outputs    []onnxValue       `json:"outputs"`
	Metadata   map[string]string `json:"metadata"`
}

type onnxValue struct {
	Name  string   `json:"name"`
	Type  string   `json:"type"`
	Shape []string `json:"shape"` // a size, a symbolic name, or "?"
}

// inspectONNX describes an ONNX model: inputs, outputs (initializers
// excluded), opsets, size of the graph and its metadata (bitrun.* keys for a
// bitrun export).
func inspectONNX(ctx context.Context, path string) (*onnxReport, error) {
	m, err := onnxpb.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("inspect: %s: %w", path, err)
	}
	r := &onnxReport{File: path, Format: "onnx", IRVersion: m.IRVersion, Opsets: map[string]int64{},
		Producer: strings.TrimSpace(m.ProducerName + " " + m.ProducerVersion), Metadata: map[string]string{}}
	for _, o := range m.OpsetImport {
		d := o.Domain
		if d == "" {
			d = "ai.onnx"
		}
		r.Opsets[d] = o.Version
	}
	for _, e := range m.MetadataProps {
		r.Metadata[e.Key] = e.Value
	}
	if g := m.Graph; g != nil {
		r.Nodes = len(g.Nodes)
		inits := map[string]bool{}
		for _, t := range g.Initializers {
			inits[t.Name] = true
			n := int64(1)
			for _, d := range t.Dims {
				n *= d
			}
			r.Parameters += n
		}
		for _, v := range g.Inputs {
			if !inits[v.Name] {
				r.Inputs = append(r.Inputs, valueOf(v))
			}
		}
		for _, v := range g.Outputs {
			r.Outputs = append(r.Outputs, valueOf(v))
		}
	}
	if r.Size, r.SHA256, err = fileDigest(ctx, path); err != nil {
		return nil, err
	}
	return r, nil
}

func valueOf(v *onnxpb.ValueInfo) onnxValue {
	out := onnxValue{Name: v.Name, Type: elemTypeName(v.ElemType), Shape: []string{}}
	for _, d := range v.Shape {
		switch {
		case d.Param != "":
			out.Shape = append(out.Shape, d.Param)
		case d.Value > 0:
			out.Shape = append(out.Shape, fmt.Sprint(d.Value))
		default:
			out.Shape = append(out.Shape, "?")
		}
	}
	return out
}

func elemTypeName(t onnxpb.DataType) string {
	switch t {
	case onnxpb.Float:
		return "float32"
	case onnxpb.Uint8:
		return "uint8"
	case onnxpb.Int8:
		return "int8"
	case onnxpb.Int32:
		return "int32"
	case onnxpb.Int64:
		return "int64"
	case onnxpb.String:
		return "string"
	case onnxpb.Bool:
		return "bool"
	case onnxpb.Float16:
		return "float16"
	case onnxpb.Double:
		return "float64"
	}
	return fmt.Sprintf("type %d", t)
}

func printONNXInspect(w io.Writer, r *onnxReport) error {
	fmt.Fprintf(w, "file:        %s (ONNX model)\n", r.File)
	fmt.Fprintf(w, "size:        %s bytes (%s)\n", groupDigits(r.Size), byteSize(r.Size))
	fmt.Fprintf(w, "sha256:      %s\n", r.SHA256)
	var ops []string
	for d, v := range r.Opsets {
		ops = append(ops, fmt.Sprintf("%s %d", d, v))
	}
	sort.Strings(ops)
	fmt.Fprintf(w, "ir version:  %d, opsets %s\n", r.IRVersion, strings.Join(ops, ", "))
	if r.Producer != "" {
		fmt.Fprintf(w, "producer:    %s\n", r.Producer)
	}
	fmt.Fprintf(w, "graph:       %d nodes, %s parameters\n", r.Nodes, groupDigits(r.Parameters))
	for _, v := range r.Inputs {
		fmt.Fprintf(w, "input:       %s %s [%s]\n", v.Name, v.Type, strings.Join(v.Shape, ", "))
	}
	for _, v := range r.Outputs {
		fmt.Fprintf(w, "output:      %s %s [%s]\n", v.Name, v.Type, strings.Join(v.Shape, ", "))
	}
	keys := make([]string, 0, len(r.Metadata))
	for k := range r.Metadata {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if len(keys) == 0 {
		fmt.Fprintln(w, "metadata:    none (not a bitrun export: give predict/eval --resolution, --mean, --std)")
	}
	for i, k := range keys {
		label := ""
		if i == 0 {
			label = "metadata:"
		}
		v := r.Metadata[k]
		if len(v) > 120 {
			v = v[:117] + "..."
		}
		fmt.Fprintf(w, "%-12s %s = %s\n", label, k, v)
	}
	return nil
}
