package quantize

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/bitrun/bitrun/export"
	"github.com/bitrun/bitrun/export/meta"
	"github.com/bitrun/bitrun/export/onnxpb"
)

// site is one operator whose inputs (and output) are quantized: a Conv, or
// the head's Gemm.
type site struct {
	node   *onnxpb.Node
	weight *onnxpb.Tensor // the float kernel initializer
	input  string         // the activation read
	output string         // the activation produced (Conv only; "" for the head)
}

// bitGraph is a bitrun BiT export, checked and indexed for quantization.
type bitGraph struct {
	m        *onnxpb.Model
	meta     meta.Meta
	convs    []site
	head     site
	inits    map[string]*onnxpb.Tensor
	channels int // input channels of the root convolution
}

// quantOps are operators that only a quantized graph holds.
var quantOps = map[string]bool{
	"QuantizeLinear": true, "DequantizeLinear": true, "DynamicQuantizeLinear": true,
	"QLinearConv": true, "QLinearMatMul": true, "ConvInteger": true, "MatMulInteger": true,
}

// analyse checks that m is a float inference export of bitrun's writer and
// finds its convolutions and head. Errors wrap ErrNotBiT or ErrQuantized.
func analyse(m *onnxpb.Model) (*bitGraph, error) {
	md := m.Metadata()
	if m.ProducerName != export.Producer || md[meta.Arch] == "" || m.Graph == nil {
		return nil, fmt.Errorf("%w: producer %q, %s %q: only bitrun exports (bitrun export) can be quantized",
			ErrNotBiT, m.ProducerName, meta.Arch, md[meta.Arch])
	}
	if q := md[MetaQuantized]; q != "" {
		return nil, fmt.Errorf("%w: metadata %s is %q", ErrQuantized, MetaQuantized, q)
	}
	for _, n := range m.Graph.Nodes {
		if quantOps[n.OpType] || n.Domain == "com.microsoft" {
			return nil, fmt.Errorf("%w: node %q is %s", ErrQuantized, n.Name, n.OpType)
		}
	}
	bm, err := meta.Parse(md)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotBiT, err)
	}
	if bm.Variant != "inference" {
		return nil, fmt.Errorf("%w: %s is %q: quantize the inference export (WS folded), not a trainable one", ErrNotBiT, meta.Variant, bm.Variant)
	}
	if m.Opset("") < 13 {
		return nil, fmt.Errorf("%w: opset %d; per-channel QDQ needs 13 or later", ErrNotBiT, m.Opset(""))
	}
	g := &bitGraph{m: m, meta: bm, inits: map[string]*onnxpb.Tensor{}}
	for _, t := range m.Graph.Initializers {
		if t.DataLocation == onnxpb.LocationExternal {
			return nil, fmt.Errorf("%w: tensor %q has external data; only models with inline weights (under 2 GB) can be quantized", ErrUnsupported, t.Name)
		}
		g.inits[t.Name] = t
	}
	if len(m.Graph.Inputs) != 1 || m.Graph.Inputs[0].Name != export.InputImage {
		return nil, fmt.Errorf("%w: want one graph input %q", ErrNotBiT, export.InputImage)
	}
	for _, n := range m.Graph.Nodes {
		switch {
		case n.OpType == "Conv":
			if len(n.Inputs) != 2 || len(n.Outputs) != 1 {
				return nil, fmt.Errorf("%w: conv %q has %d inputs (a bias?), want 2", ErrUnsupported, n.Name, len(n.Inputs))
			}
			w := g.inits[n.Inputs[1]]
			if w == nil || w.DataType != onnxpb.Float || len(w.Dims) != 4 {
				return nil, fmt.Errorf("%w: conv %q: kernel %q is not a float [O,I,kh,kw] initializer", ErrNotBiT, n.Name, n.Inputs[1])
			}
			if g := n.Attr("group"); g != nil && g.I != 1 {
				return nil, fmt.Errorf("%w: conv %q is grouped", ErrUnsupported, n.Name)
			}
			g.convs = append(g.convs, site{node: n, weight: w, input: n.Inputs[0], output: n.Outputs[0]})
			if n.Inputs[0] == export.InputImage {
				g.channels = int(w.Dims[1])
			}
		case n.OpType == "Gemm" && len(n.Outputs) == 1 && n.Outputs[0] == export.OutputLogits:
			if len(n.Inputs) != 3 || n.Attr("transB") != nil && n.Attr("transB").I != 0 || n.Attr("transA") != nil && n.Attr("transA").I != 0 {
				return nil, fmt.Errorf("%w: head %q is not Gemm(features, B[C,K], bias)", ErrNotBiT, n.Name)
			}
			w := g.inits[n.Inputs[1]]
			if w == nil || w.DataType != onnxpb.Float || len(w.Dims) != 2 {
				return nil, fmt.Errorf("%w: head %q: weight %q is not a float [C,K] initializer", ErrNotBiT, n.Name, n.Inputs[1])
			}
			g.head = site{node: n, weight: w, input: n.Inputs[0]}
		}
	}
	switch {
	case len(g.convs) == 0:
		return nil, fmt.Errorf("%w: no convolutions", ErrNotBiT)
	case g.channels == 0:
		return nil, fmt.Errorf("%w: no convolution reads %q", ErrNotBiT, export.InputImage)
	case g.head.node == nil:
		return nil, fmt.Errorf("%w: no Gemm head producing %q", ErrNotBiT, export.OutputLogits)
	case int(g.head.weight.Dims[1]) != bm.Classes:
		return nil, fmt.Errorf("%w: head has %d outputs but %s is %d", ErrNotBiT, g.head.weight.Dims[1], meta.Classes, bm.Classes)
	}
	return g, nil
}

// keepFloat drops the convolutions with fewer than minChannels input
// channels from the quantized set (all stay when minChannels is negative)
// and returns how many it dropped.
func (g *bitGraph) keepFloat(minChannels int) int {
	kept := g.convs[:0:0]
	for _, c := range g.convs {
		if minChannels < 0 || c.weight.Dims[1] >= int64(minChannels) {
			kept = append(kept, c)
		}
	}
	n := len(g.convs) - len(kept)
	g.convs = kept
	return n
}

// activations lists the tensors calibration must measure, in graph order
// without duplicates: the image, each conv's input and output, and the
// head's input when the head is quantized.
func (g *bitGraph) activations(head Head) []string {
	seen := map[string]bool{}
	var out []string
	add := func(name string) {
		if !seen[name] {
			seen[name] = true
			out = append(out, name)
		}
	}
	for _, c := range g.convs {
		add(c.input)
		add(c.output)
	}
	if head == HeadInt8 {
		add(g.head.input)
	}
	return out
}

// calibrationModel is the float model with every tensor of names (except
// the graph input and existing outputs) added as a graph output, so one
// run returns them all. It shares g's initializers.
func (g *bitGraph) calibrationModel(names []string) *onnxpb.Model {
	gr := *g.m.Graph
	gr.Outputs = append([]*onnxpb.ValueInfo(nil), gr.Outputs...)
	have := map[string]bool{export.InputImage: true}
	for _, o := range gr.Outputs {
		have[o.Name] = true
	}
	for _, n := range names {
		if !have[n] {
			have[n] = true
			gr.Outputs = append(gr.Outputs, &onnxpb.ValueInfo{Name: n, ElemType: onnxpb.Float})
		}
	}
	m := *g.m
	m.Graph = &gr
	return &m
}

// qparams are the quantization parameters of one activation.
type qparams struct {
	scale float32
	zero  uint8
}

// qdqModel rewrites the float model to QDQ: every activation in act gets a
// QuantizeLinear (uint8, per tensor) and DequantizeLinear nodes, one per
// quantized consumer (each Conv, or the Gemm head, owns its DQ as ONNX
// Runtime's QDQ fusion wants) plus one shared by the other consumers; every
// conv kernel (and the head's weight with HeadInt8) is replaced by an int8
// initializer with per-output-channel symmetric scales and a
// DequantizeLinear. GroupNorm, the residual additions, the pooling and the
// softmax stay float. The result shares no slices with g's model that it
// changes.
func (g *bitGraph) qdqModel(act map[string]qparams, head Head) *onnxpb.Model {
	src := g.m.Graph
	out := &onnxpb.Graph{Name: src.Name, DocString: src.DocString, Inputs: src.Inputs, Outputs: src.Outputs, ValueInfo: src.ValueInfo}
	quantized := map[*onnxpb.Node]bool{} // consumers with dedicated DQs
	weights := map[string]site{}
	for _, c := range g.convs {
		quantized[c.node] = true
		weights[c.weight.Name] = c
	}
	if head == HeadInt8 {
		quantized[g.head.node] = true
		weights[g.head.weight.Name] = g.head
	}
	// Initializers: float kernels become int8 with scales and zero points.
	for _, t := range src.Initializers {
		s, ok := weights[t.Name]
		if !ok {
			out.Initializers = append(out.Initializers, t)
			continue
		}
		w, _ := t.Floats() // checked float and inline by analyse
		axisFast := s.node.OpType == "Gemm"
		ch := int(t.Dims[0])
		if axisFast {
			ch = int(t.Dims[1])
		}
		q, scales := int8PerChannel(w, ch, axisFast)
		raw := make([]byte, len(q))
		for i, v := range q {
			raw[i] = byte(v)
		}
		out.Initializers = append(out.Initializers,
			&onnxpb.Tensor{Name: t.Name + "_quantized", DataType: onnxpb.Int8, Dims: t.Dims, RawData: raw},
			onnxpb.FloatTensor(t.Name+"_scale", []int64{int64(ch)}, scales),
			&onnxpb.Tensor{Name: t.Name + "_zero_point", DataType: onnxpb.Int8, Dims: []int64{int64(ch)}, RawData: make([]byte, ch)})
	}
	// Activation parameters.
	for _, name := range sortedKeys(act) {
		p := act[name]
		out.Initializers = append(out.Initializers,
			onnxpb.FloatTensor(name+"_scale", nil, []float32{p.scale}),
			&onnxpb.Tensor{Name: name + "_zero_point", DataType: onnxpb.Uint8, RawData: []byte{p.zero}})
	}
	// Consumers of each quantized activation.
	consumers := map[string][]*onnxpb.Node{}
	for _, n := range src.Nodes {
		for _, in := range n.Inputs {
			if _, ok := act[in]; ok {
				consumers[in] = append(consumers[in], n)
			}
		}
	}
	// renamed[node][input] is the DQ output a consumer reads instead.
	renamed := map[*onnxpb.Node]map[string]string{}
	var pending []*onnxpb.Node // Q/DQ nodes of an activation, emitted after its producer
	quantizeActivation := func(name string) {
		q := name + "_QuantizeLinear"
		pending = append(pending, &onnxpb.Node{Name: q, OpType: "QuantizeLinear",
			Inputs: []string{name, name + "_scale", name + "_zero_point"}, Outputs: []string{q + "_Output"}})
		shared := ""
		for i, c := range consumers[name] {
			dq := ""
			if quantized[c] || shared == "" {
				dq = name + "_DequantizeLinear"
				if i > 0 {
					dq += "_" + strconv.Itoa(i)
				}
				pending = append(pending, &onnxpb.Node{Name: dq, OpType: "DequantizeLinear",
					Inputs: []string{q + "_Output", name + "_scale", name + "_zero_point"}, Outputs: []string{dq + "_Output"}})
				if !quantized[c] {
					shared = dq
				}
			} else {
				dq = shared
			}
			if renamed[c] == nil {
				renamed[c] = map[string]string{}
			}
			renamed[c][name] = dq + "_Output"
		}
	}
	weightDQ := func(s site) *onnxpb.Node {
		axis := int64(0)
		if s.node.OpType == "Gemm" {
			axis = 1
		}
		t := s.weight.Name
		return &onnxpb.Node{Name: t + "_DequantizeLinear", OpType: "DequantizeLinear",
			Inputs:     []string{t + "_quantized", t + "_scale", t + "_zero_point"},
			Outputs:    []string{t + "_DequantizeLinear_Output"},
			Attributes: []*onnxpb.Attribute{onnxpb.IntAttr("axis", axis)}}
	}
	if _, ok := act[export.InputImage]; ok {
		quantizeActivation(export.InputImage)
		out.Nodes = append(out.Nodes, pending...)
		pending = pending[:0]
	}
	for _, n := range src.Nodes {
		nn := *n
		nn.Inputs = append([]string(nil), n.Inputs...)
		for i, in := range nn.Inputs {
			if r, ok := renamed[n][in]; ok {
				nn.Inputs[i] = r
			}
		}
		if quantized[n] {
			s := weights[n.Inputs[1]]
			out.Nodes = append(out.Nodes, weightDQ(s))
			nn.Inputs[1] = s.weight.Name + "_DequantizeLinear_Output"
		}
		out.Nodes = append(out.Nodes, &nn)
		for _, o := range n.Outputs {
			if _, ok := act[o]; ok {
				quantizeActivation(o)
			}
		}
		out.Nodes = append(out.Nodes, pending...)
		pending = pending[:0]
	}
	m := *g.m
	m.Graph = out
	m.MetadataProps = append([]onnxpb.StringStringEntry(nil), g.m.MetadataProps...)
	return &m
}

func sortedKeys(m map[string]qparams) []string {
	return slices.Sorted(maps.Keys(m)) // a deterministic file
}

// describe is a short summary of a model's operator counts, e.g.
// "Conv 20, DequantizeLinear 62, QuantizeLinear 41".
func describe(m *onnxpb.Model) string {
	counts := map[string]int{}
	var order []string
	for _, n := range m.Graph.Nodes {
		if counts[n.OpType] == 0 {
			order = append(order, n.OpType)
		}
		counts[n.OpType]++
	}
	parts := make([]string, len(order))
	for i, op := range order {
		parts[i] = fmt.Sprintf("%s %d", op, counts[op])
	}
	return strings.Join(parts, ", ")
}
