package export

import (
	"fmt"

	"github.com/bitrun/bitrun/export/onnxpb"
	"github.com/bitrun/bitrun/model"
	"github.com/bitrun/bitrun/nn"
)

// weight is a float initializer whose values are computed when written, so
// that folding the kernels of a 3.7 GB model never holds two copies.
type weight struct {
	t    *onnxpb.Tensor
	n    int64 // element count
	fill func() []float32
}

// builder assembles the BiT inference graph.
type builder struct {
	opset     int64
	trainable bool
	cfg       model.Config
	params    model.Params
	g         *onnxpb.Graph
	weights   []*weight
	used      map[string]bool
}

func newBuilder(cfg model.Config, params model.Params, opset int64, trainable bool) *builder {
	return &builder{
		opset: opset, trainable: trainable, cfg: cfg, params: params,
		g:    &onnxpb.Graph{Name: "bit_" + cfg.Name},
		used: map[string]bool{},
	}
}

// name returns a value name not used yet, based on base.
func (b *builder) name(base string) string {
	n := base
	for i := 1; b.used[n]; i++ {
		n = fmt.Sprintf("%s_%d", base, i)
	}
	b.used[n] = true
	return n
}

// op appends a node and returns its (single) output name.
func (b *builder) op(base, opType string, inputs []string, attrs ...*onnxpb.Attribute) string {
	out := b.name(base)
	b.g.Nodes = append(b.g.Nodes, &onnxpb.Node{
		Name: out, OpType: opType, Inputs: inputs, Outputs: []string{out}, Attributes: attrs,
	})
	return out
}

// constant adds a small inline initializer once and returns its name.
func (b *builder) constant(name string, t *onnxpb.Tensor) string {
	if b.used[name] {
		return name
	}
	b.used[name] = true
	t.Name = name
	b.g.Initializers = append(b.g.Initializers, t)
	return name
}

func (b *builder) int64s(name string, v ...int64) string {
	return b.constant(name, onnxpb.Int64Tensor(name, []int64{int64(len(v))}, v))
}

func (b *builder) scalar(name string, v float32) string {
	return b.constant(name, onnxpb.FloatTensor(name, nil, []float32{v}))
}

// addWeight adds a deferred float initializer.
func (b *builder) addWeight(name string, dims []int64, fill func() []float32) string {
	if b.used[name] {
		panic("export: duplicate initializer " + name) // programmer error
	}
	b.used[name] = true
	n := int64(1)
	for _, d := range dims {
		n *= d
	}
	t := &onnxpb.Tensor{Name: name, DataType: onnxpb.Float, Dims: dims}
	b.g.Initializers = append(b.g.Initializers, t)
	b.weights = append(b.weights, &weight{t: t, n: n, fill: fill})
	return name
}

// reduceMean averages over axes keeping them, in the form the opset wants
// (axes became an input in opset 18).
func (b *builder) reduceMean(base, x string, axes ...int64) string {
	if b.opset >= 18 {
		key := "const/axes"
		for _, a := range axes {
			key += fmt.Sprintf("_%d", a)
		}
		return b.op(base, "ReduceMean", []string{x, b.int64s(key, axes...)}, onnxpb.IntAttr("keepdims", 1))
	}
	return b.op(base, "ReduceMean", []string{x}, onnxpb.IntsAttr("axes", axes...), onnxpb.IntAttr("keepdims", 1))
}

// kernel adds the conv kernel under checkpoint key: standardised at export
// (inference graph) or raw with the standardisation computed in the graph
// (trainable graph). It returns the name of the OIHW kernel value.
func (b *builder) kernel(key string) string {
	w := b.params[key]
	kh, kw, ci, co := int64(w.Shape[0]), int64(w.Shape[1]), int64(w.Shape[2]), int64(w.Shape[3])
	dims := []int64{co, ci, kh, kw}
	if !b.trainable {
		return b.addWeight(key+"/ws", dims, func() []float32 {
			return nn.StandardizeWeight(nn.HWIOToOIHW(w)).Data
		})
	}
	raw := b.addWeight(key, dims, func() []float32 { return nn.HWIOToOIHW(w).Data })
	// WS: per output channel over (in, kh, kw), biased variance, eps inside the sqrt.
	mean := b.reduceMean(key+"/ws/mean", raw, 1, 2, 3)
	d := b.op(key+"/ws/centered", "Sub", []string{raw, mean})
	sq := b.op(key+"/ws/squared", "Mul", []string{d, d})
	v := b.reduceMean(key+"/ws/var", sq, 1, 2, 3)
	ve := b.op(key+"/ws/var_eps", "Add", []string{v, b.scalar("const/ws_eps", nn.WSEpsilon)})
	sd := b.op(key+"/ws/std", "Sqrt", []string{ve})
	return b.op(key+"/ws", "Div", []string{d, sd})
}

func (b *builder) conv(base, x, key string, stride, pad int64) string {
	w := b.params[key]
	k := int64(w.Shape[0])
	kern := b.kernel(key)
	return b.op(base, "Conv", []string{x, kern},
		onnxpb.IntsAttr("kernel_shape", k, k),
		onnxpb.IntsAttr("strides", stride, stride),
		onnxpb.IntsAttr("pads", pad, pad, pad, pad),
		onnxpb.IntsAttr("dilations", 1, 1),
		onnxpb.IntAttr("group", 1))
}

// groupNorm normalises x [N,C,H,W] over cfg.Groups groups and applies the
// affine gamma/beta of the checkpoint keys.
func (b *builder) groupNorm(base, x, gammaKey, betaKey string) string {
	gamma, beta := b.params[gammaKey], b.params[betaKey]
	c := int64(gamma.Shape[0])
	groups := int64(b.cfg.Groups)
	if b.opset >= 21 {
		// GroupNormalization-21: per-channel scale and bias.
		s := b.addWeight(gammaKey, []int64{c}, func() []float32 { return gamma.Data })
		t := b.addWeight(betaKey, []int64{c}, func() []float32 { return beta.Data })
		return b.op(base, "GroupNormalization", []string{x, s, t},
			onnxpb.FloatAttr("epsilon", nn.GNEpsilon),
			onnxpb.IntAttr("num_groups", groups),
			onnxpb.IntAttr("stash_type", 1))
	}
	grouped := b.op(base+"/grouped", "Reshape", []string{x, b.int64s(fmt.Sprintf("const/gn_shape_g%d", groups), 0, groups, -1)})
	unit := make([]float32, 2*groups)
	for i := range unit[:groups] {
		unit[i] = 1
	}
	ones := b.constant(fmt.Sprintf("const/gn_ones_g%d", groups), onnxpb.FloatTensor("", []int64{groups}, unit[:groups]))
	zeros := b.constant(fmt.Sprintf("const/gn_zeros_g%d", groups), onnxpb.FloatTensor("", []int64{groups}, unit[groups:]))
	norm := b.op(base+"/normed", "InstanceNormalization", []string{grouped, ones, zeros}, onnxpb.FloatAttr("epsilon", nn.GNEpsilon))
	shape := b.op(base+"/shape", "Shape", []string{x})
	back := b.op(base+"/ungrouped", "Reshape", []string{norm, shape})
	s := b.addWeight(gammaKey, []int64{1, c, 1, 1}, func() []float32 { return gamma.Data })
	t := b.addWeight(betaKey, []int64{1, c, 1, 1}, func() []float32 { return beta.Data })
	scaled := b.op(base+"/scaled", "Mul", []string{back, s})
	return b.op(base, "Add", []string{scaled, t})
}

func (b *builder) gnRelu(base, x, gammaKey, betaKey string) string {
	return b.op(base+"/relu", "Relu", []string{b.groupNorm(base+"/gn", x, gammaKey, betaKey)})
}

// unit is one pre-activation bottleneck unit; the projection shortcut reads
// the pre-activated input.
func (b *builder) unit(x string, blk, u int) string {
	stride := int64(1)
	if u == 0 {
		stride = int64(model.BlockStride(blk))
	}
	p := model.UnitPrefix(blk, u)
	pre := b.gnRelu(p+"/a", x, model.GammaKey(blk, u, "a"), model.BetaKey(blk, u, "a"))
	shortcut := x
	if b.cfg.HasProj(blk, u) {
		shortcut = b.conv(p+"/a/proj/conv", pre, model.ConvKey(blk, u, "a/proj"), stride, 0)
	}
	y := b.conv(p+"/a/conv", pre, model.ConvKey(blk, u, "a"), 1, 0)
	y = b.gnRelu(p+"/b", y, model.GammaKey(blk, u, "b"), model.BetaKey(blk, u, "b"))
	y = b.conv(p+"/b/conv", y, model.ConvKey(blk, u, "b"), stride, 1)
	y = b.gnRelu(p+"/c", y, model.GammaKey(blk, u, "c"), model.BetaKey(blk, u, "c"))
	y = b.conv(p+"/c/conv", y, model.ConvKey(blk, u, "c"), 1, 0)
	return b.op(p+"/out", "Add", []string{y, shortcut})
}

// build writes the whole network: image -> logits, features, probabilities.
func (b *builder) build() {
	cfg := b.cfg
	b.used[InputImage] = true
	b.g.Inputs = []*onnxpb.ValueInfo{{
		Name: InputImage, ElemType: onnxpb.Float, HasShape: true,
		Shape: []onnxpb.Dim{{Param: "N"}, {Value: 3}, {Param: "H"}, {Param: "W"}},
	}}
	h := b.conv("resnet/root_block/conv", InputImage, model.RootKernel, 2, 3)
	// Zero pad of 1, then max pool without padding (pool padding would be
	// -inf: the conv output can be negative). The pool also declares its
	// Indices output, unused: ONNX Runtime's PadFusion would otherwise fold
	// the zero Pad into the MaxPool's pads (it does so for Pad-13/18/19 with
	// MaxPool-12, changing the border values), and no correct optimiser
	// folds padding into a pool whose indices are requested.
	h = b.op("resnet/root_block/pad", "Pad", []string{h, b.int64s("const/root_pads", 0, 0, 1, 1, 0, 0, 1, 1)},
		onnxpb.StringAttr("mode", "constant"))
	pool := b.name("resnet/root_block/pool")
	b.g.Nodes = append(b.g.Nodes, &onnxpb.Node{Name: pool, OpType: "MaxPool", Inputs: []string{h},
		Outputs: []string{pool, b.name(pool + "/indices")},
		Attributes: []*onnxpb.Attribute{onnxpb.IntsAttr("kernel_shape", 3, 3),
			onnxpb.IntsAttr("strides", 2, 2), onnxpb.IntsAttr("pads", 0, 0, 0, 0)}})
	h = pool
	for blk := 0; blk < 4; blk++ {
		for u := 0; u < cfg.Units[blk]; u++ {
			h = b.unit(h, blk, u)
		}
	}
	h = b.gnRelu("resnet/pre_head", h, model.HeadGamma, model.HeadBeta)
	pooled := b.op("resnet/pool", "GlobalAveragePool", []string{h})
	b.used[OutputFeatures] = true
	b.g.Nodes = append(b.g.Nodes, &onnxpb.Node{Name: OutputFeatures, OpType: "Flatten",
		Inputs: []string{pooled}, Outputs: []string{OutputFeatures}, Attributes: []*onnxpb.Attribute{onnxpb.IntAttr("axis", 1)}})
	hk, hb := b.params[model.HeadKernel], b.params[model.HeadBias]
	c, k := int64(hk.Shape[2]), int64(hk.Shape[3])
	kern := b.addWeight(model.HeadKernel, []int64{c, k}, func() []float32 { return hk.Data })
	bias := b.addWeight(model.HeadBias, []int64{k}, func() []float32 { return hb.Data })
	b.used[OutputLogits] = true
	b.g.Nodes = append(b.g.Nodes, &onnxpb.Node{Name: OutputLogits, OpType: "Gemm",
		Inputs: []string{OutputFeatures, kern, bias}, Outputs: []string{OutputLogits}})
	b.used[OutputProbabilities] = true
	b.g.Nodes = append(b.g.Nodes, &onnxpb.Node{Name: OutputProbabilities, OpType: "Softmax",
		Inputs: []string{OutputLogits}, Outputs: []string{OutputProbabilities},
		Attributes: []*onnxpb.Attribute{onnxpb.IntAttr("axis", 1)}})
	out := func(name string, width int64) *onnxpb.ValueInfo {
		return &onnxpb.ValueInfo{Name: name, ElemType: onnxpb.Float, HasShape: true,
			Shape: []onnxpb.Dim{{Param: "N"}, {Value: width}}}
	}
	b.g.Outputs = []*onnxpb.ValueInfo{
		out(OutputLogits, k), out(OutputFeatures, c), out(OutputProbabilities, k),
	}
}
