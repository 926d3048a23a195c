package export

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/bitrun/bitrun/export/meta"
	"github.com/bitrun/bitrun/export/onnxpb"
	"github.com/bitrun/bitrun/model"
	"github.com/bitrun/bitrun/nn"
)

func tinyConfig(t testing.TB, classes int) model.Config {
	t.Helper()
	cfg, err := model.Arch("tiny", classes)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func opCounts(g *onnxpb.Graph) map[string]int {
	c := map[string]int{}
	for _, n := range g.Nodes {
		c[n.OpType]++
	}
	return c
}

func nodeByName(g *onnxpb.Graph, name string) *onnxpb.Node {
	for _, n := range g.Nodes {
		if n.Name == name {
			return n
		}
	}
	return nil
}

func initializer(g *onnxpb.Graph, name string) *onnxpb.Tensor {
	for _, t := range g.Initializers {
		if t.Name == name {
			return t
		}
	}
	return nil
}

// numGN is the number of GroupNorms in cfg: three per unit plus the head's.
func numGN(cfg model.Config) int {
	n := 1
	for _, u := range cfg.Units {
		n += 3 * u
	}
	return n
}

func TestGraphStructure(t *testing.T) {
	cfg := tinyConfig(t, 10)
	params := randomParams(cfg, 3)
	convs := 0
	for _, s := range cfg.Spec() {
		if s.Kind == model.KindConv {
			convs++
		}
	}
	for _, tc := range []struct {
		opset     int
		trainable bool
	}{{17, false}, {18, false}, {21, false}, {17, true}, {21, true}} {
		m := build(t, cfg, params, Options{Opset: tc.opset, Trainable: tc.trainable})
		g := m.Graph
		ops := opCounts(g)
		name := "opset " + strconv.Itoa(tc.opset)
		if tc.trainable {
			name += " trainable"
		}
		if m.Opset("") != int64(tc.opset) || m.ProducerName != "bitrun" {
			t.Errorf("%s: opset %d producer %q", name, m.Opset(""), m.ProducerName)
		}
		if ops["BatchNormalization"] != 0 {
			t.Errorf("%s: BatchNormalization emitted", name)
		}
		if ops["Conv"] != convs {
			t.Errorf("%s: %d Conv nodes, want %d", name, ops["Conv"], convs)
		}
		wantGN := 0
		if tc.opset >= 21 {
			wantGN = numGN(cfg)
		}
		if ops["GroupNormalization"] != wantGN {
			t.Errorf("%s: %d GroupNormalization nodes, want %d", name, ops["GroupNormalization"], wantGN)
		}
		// Below opset 21 each GN is an InstanceNormalization of the
		// [N,G,-1] view; ReduceMean: two per in-graph WS.
		wantIN := numGN(cfg) - wantGN
		if ops["InstanceNormalization"] != wantIN {
			t.Errorf("%s: %d InstanceNormalization nodes, want %d", name, ops["InstanceNormalization"], wantIN)
		}
		wantRM := 0
		if tc.trainable {
			wantRM += 2 * convs
		}
		if ops["ReduceMean"] != wantRM {
			t.Errorf("%s: %d ReduceMean nodes, want %d", name, ops["ReduceMean"], wantRM)
		}
		for _, n := range g.Nodes {
			switch n.OpType {
			case "ReduceMean":
				// axes moved from attribute to input in opset 18.
				if (tc.opset >= 18) != (len(n.Inputs) == 2) || (tc.opset >= 18) == (n.Attr("axes") != nil) {
					t.Errorf("%s: ReduceMean %s inputs %v attrs %d", name, n.Name, n.Inputs, len(n.Attributes))
				}
			case "InstanceNormalization":
				var scale, bias []float32
				if t1, t2 := initializer(g, n.Inputs[1]), initializer(g, n.Inputs[2]); t1 != nil && t2 != nil {
					scale, _ = t1.Floats()
					bias, _ = t2.Floats()
				}
				if len(scale) != cfg.Groups || len(bias) != cfg.Groups || slices.ContainsFunc(scale, func(v float32) bool { return v != 1 }) ||
					slices.ContainsFunc(bias, func(v float32) bool { return v != 0 }) || n.Attr("epsilon").F != float32(nn.GNEpsilon) {
					t.Errorf("%s: InstanceNormalization %s: scale %v bias %v attrs %v", name, n.Name, scale, bias, n.Attributes)
				}
			case "GroupNormalization":
				scale := initializer(g, n.Inputs[1])
				if scale == nil || len(scale.Dims) != 1 || n.Attr("num_groups").I != int64(cfg.Groups) ||
					n.Attr("epsilon").F != float32(nn.GNEpsilon) || n.Attr("stash_type").I != 1 {
					t.Errorf("%s: GroupNormalization %s: scale %v attrs %v", name, n.Name, scale, n.Attributes)
				}
			}
		}
		in := g.Inputs[0]
		wantIn := []onnxpb.Dim{{Param: "N"}, {Value: 3}, {Param: "H"}, {Param: "W"}}
		if in.Name != InputImage || in.ElemType != onnxpb.Float || !reflect.DeepEqual(in.Shape, wantIn) {
			t.Errorf("%s: input %+v", name, in)
		}
		var outs []string
		for _, o := range g.Outputs {
			outs = append(outs, o.Name+":"+strconv.FormatInt(o.Shape[1].Value, 10))
		}
		if want := []string{"logits:10", "features:256", "probabilities:10"}; !reflect.DeepEqual(outs, want) {
			t.Errorf("%s: outputs %v, want %v", name, outs, want)
		}
		// Root: conv 7x7/2 pad 3, zero Pad 1, MaxPool 3x3/2 without padding
		// that also declares its indices (guards against pad fusion).
		root := nodeByName(g, "resnet/root_block/conv")
		if root == nil || !reflect.DeepEqual(root.Attr("pads").Ints, []int64{3, 3, 3, 3}) || !reflect.DeepEqual(root.Attr("strides").Ints, []int64{2, 2}) {
			t.Fatalf("%s: root conv %+v", name, root)
		}
		pad := nodeByName(g, "resnet/root_block/pad")
		pads, _ := initializer(g, pad.Inputs[1]).Int64s()
		if !reflect.DeepEqual(pads, []int64{0, 0, 1, 1, 0, 0, 1, 1}) || string(pad.Attr("mode").S) != "constant" || len(pad.Inputs) != 2 {
			t.Errorf("%s: pad %v pads %v", name, pad, pads)
		}
		pool := nodeByName(g, "resnet/root_block/pool")
		if pool.Inputs[0] != pad.Outputs[0] || len(pool.Outputs) != 2 || !reflect.DeepEqual(pool.Attr("pads").Ints, []int64{0, 0, 0, 0}) {
			t.Errorf("%s: pool %+v", name, pool)
		}
		// Every node input is produced before use (topological order).
		known := map[string]bool{InputImage: true, "": true}
		for _, t := range g.Initializers {
			known[t.Name] = true
		}
		for _, n := range g.Nodes {
			for _, i := range n.Inputs {
				if !known[i] {
					t.Fatalf("%s: node %s reads %q before it is produced", name, n.Name, i)
				}
			}
			for _, o := range n.Outputs {
				if known[o] {
					t.Fatalf("%s: value %q produced twice", name, o)
				}
				known[o] = true
			}
		}
	}
}

// TestProjectionReadsPreactivation checks the shortcut wiring: the
// projection conv reads the ReLU of gn_a, as conv a does.
func TestProjectionReadsPreactivation(t *testing.T) {
	cfg := tinyConfig(t, 10)
	m := build(t, cfg, randomParams(cfg, 3), Options{})
	for b := 0; b < 4; b++ {
		p := model.UnitPrefix(b, 0)
		proj, convA := nodeByName(m.Graph, p+"/a/proj/conv"), nodeByName(m.Graph, p+"/a/conv")
		if proj == nil || convA == nil || proj.Inputs[0] != p+"/a/relu" || convA.Inputs[0] != p+"/a/relu" {
			t.Fatalf("block %d: proj %v conv a %v", b+1, proj, convA)
		}
		wantStride := int64(model.BlockStride(b))
		if s := proj.Attr("strides").Ints[0]; s != wantStride {
			t.Errorf("block %d: projection stride %d, want %d", b+1, s, wantStride)
		}
		if s := nodeByName(m.Graph, p+"/b/conv").Attr("strides").Ints[0]; s != wantStride {
			t.Errorf("block %d: conv b stride %d, want %d", b+1, s, wantStride)
		}
	}
}

func TestKernels(t *testing.T) {
	cfg := tinyConfig(t, 10)
	params := randomParams(cfg, 4)
	folded := build(t, cfg, params, Options{})
	raw := build(t, cfg, params, Options{Trainable: true})
	for _, s := range cfg.Spec() {
		if s.Kind != model.KindConv {
			continue
		}
		oihw := nn.HWIOToOIHW(params[s.Name])
		want := nn.StandardizeWeight(oihw)
		got, err := initializer(folded.Graph, s.Name+"/ws").Floats()
		if err != nil || !reflect.DeepEqual(got, want.Data) {
			t.Fatalf("%s: folded kernel differs from nn.StandardizeWeight (%v)", s.Name, err)
		}
		if initializer(folded.Graph, s.Name) != nil {
			t.Fatalf("%s: raw kernel present in the inference graph", s.Name)
		}
		got, err = initializer(raw.Graph, s.Name).Floats()
		if err != nil || !reflect.DeepEqual(got, oihw.Data) {
			t.Fatalf("%s: trainable kernel differs from the raw OIHW kernel (%v)", s.Name, err)
		}
		if d := initializer(raw.Graph, s.Name).Dims; !reflect.DeepEqual(d, []int64{int64(oihw.Shape[0]), int64(oihw.Shape[1]), int64(oihw.Shape[2]), int64(oihw.Shape[3])}) {
			t.Fatalf("%s: dims %v", s.Name, d)
		}
	}
	head, _ := initializer(folded.Graph, model.HeadKernel).Floats()
	if !reflect.DeepEqual(head, params[model.HeadKernel].Data) {
		t.Fatal("head kernel differs")
	}
}

func TestMetadata(t *testing.T) {
	cfg := tinyConfig(t, 3)
	labels := []string{"tench, Tinca tinca", "dog\twith tab", `quote "q"`}
	path, res := exportFile(t, cfg, randomParams(cfg, 5), Options{
		Resolution: 96, Labels: labels, SourceSHA: strings.Repeat("ab", 32), Version: "v9.9.9",
		Mean: [3]float32{0.485, 0.456, 0.406}, Std: [3]float32{0.229, 0.224, 0.225},
	})
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h, err := onnxpb.ReadHeader(f)
	if err != nil {
		t.Fatal(err)
	}
	if h.ProducerName != Producer || h.ProducerVersion != "v9.9.9" || h.IRVersion != 8 {
		t.Errorf("header %+v", h)
	}
	md := h.Metadata()
	want := map[string]string{
		"bitrun.arch": "tiny", "bitrun.classes": "3", "bitrun.resolution": "96",
		"bitrun.mean": "0.485,0.456,0.406", "bitrun.std": "0.229,0.224,0.225", "bitrun.layout": "NCHW",
		"bitrun.source_sha256": strings.Repeat("ab", 32), "bitrun.version": "v9.9.9", "bitrun.variant": "inference",
		"bitrun.labels": `["tench, Tinca tinca","dog\twith tab","quote \"q\""]`,
	}
	if !reflect.DeepEqual(md, want) {
		t.Errorf("metadata\n got %v\nwant %v", md, want)
	}
	got, err := meta.Parse(md)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Labels, labels) || got.Resolution != 96 || got.Classes != 3 || got.Mean[0] != 0.485 || got.Std[2] != 0.225 {
		t.Errorf("meta.Parse = %+v", got)
	}
	if res.Bytes != fileSize(t, path) {
		t.Errorf("Result.Bytes %d, file %d", res.Bytes, fileSize(t, path))
	}

	// ONNX Runtime sees the same map.
	p := openORT(t, path)
	info := p.Info()
	for k, v := range want {
		if info.Metadata[k] != v {
			t.Errorf("ORT metadata %s = %q, want %q", k, info.Metadata[k], v)
		}
	}
	if info.Input != InputImage || len(info.Shape) != 4 || info.Shape[0] != -1 || info.Shape[1] != 3 || info.Shape[2] != -1 {
		t.Errorf("ORT input %s %v", info.Input, info.Shape)
	}
}

func TestDefaultsMetadata(t *testing.T) {
	cfg := tinyConfig(t, 2)
	m := build(t, cfg, randomParams(cfg, 5), Options{Trainable: true})
	md := m.Metadata()
	if _, ok := md[meta.Labels]; ok {
		t.Error("labels written without labels")
	}
	if _, ok := md[meta.SourceSHA]; ok {
		t.Error("source digest written without one")
	}
	if md[meta.Resolution] != "128" || md[meta.Mean] != "0.5,0.5,0.5" || md[meta.Std] != "0.5,0.5,0.5" || md[meta.Variant] != "trainable" {
		t.Errorf("defaults: %v", md)
	}
}

func TestOptionErrors(t *testing.T) {
	cfg := tinyConfig(t, 4)
	params := randomParams(cfg, 6)
	cases := []struct {
		name string
		opts Options
		want error
	}{
		{"labels", Options{Labels: []string{"a", "b"}}, ErrLabels},
		{"opset 16", Options{Opset: 16}, ErrOpset},
		{"opset 22", Options{Opset: 22}, ErrOpset},
		{"resolution", Options{Resolution: -5}, ErrOptions},
		{"std", Options{Mean: [3]float32{0.5, 0.5, 0.5}}, ErrOptions},
		{"external", Options{External: ExternalMode(9)}, ErrOptions},
	}
	for _, c := range cases {
		_, err := Export(context.Background(), filepath.Join(t.TempDir(), "m.onnx"), cfg, params, c.opts)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		} else if !strings.HasPrefix(err.Error(), "export: ") {
			t.Errorf("%s: error %q lacks the package prefix", c.name, err)
		}
	}
	// Weights of another architecture.
	other := randomParams(tinyConfig(t, 5), 6)
	var mm *model.MismatchError
	if _, err := Build(cfg, other, Options{}); !errors.As(err, &mm) {
		t.Errorf("mismatched params: %v, want *model.MismatchError", err)
	}
	if _, err := ParseExternalMode("sometimes"); !errors.Is(err, ErrOptions) {
		t.Errorf("ParseExternalMode: %v", err)
	}
	for _, s := range []string{"auto", "always", "never"} {
		m, err := ParseExternalMode(s)
		if err != nil || m.String() != s {
			t.Errorf("ParseExternalMode(%q) = %v, %v", s, m, err)
		}
	}
}

func fileSize(t testing.TB, path string) int64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

// TestExternalData checks the side file: page-aligned offsets, lengths, the
// bytes themselves, and small tensors left inline.
func TestExternalData(t *testing.T) {
	cfg := tinyConfig(t, 10)
	params := randomParams(cfg, 7)
	inline := build(t, cfg, params, Options{})
	path, res := exportFile(t, cfg, params, Options{External: ExternalAlways})
	if res.DataPath != path+".data" || res.DataBytes != fileSize(t, res.DataPath) {
		t.Fatalf("result %+v", res)
	}
	m, err := onnxpb.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(res.DataPath)
	if err != nil {
		t.Fatal(err)
	}
	ext := 0
	end := int64(0)
	for _, tn := range m.Graph.Initializers {
		want := initializer(inline.Graph, tn.Name)
		if tn.DataLocation != onnxpb.LocationExternal {
			if len(tn.RawData) >= ExternalThreshold || !bytes.Equal(tn.RawData, want.RawData) {
				t.Errorf("%s: inline tensor of %d bytes", tn.Name, len(tn.RawData))
			}
			continue
		}
		ext++
		loc, off, n, err := tn.External()
		if err != nil {
			t.Fatal(err)
		}
		if loc != "model.onnx.data" || off%4096 != 0 || n != int64(len(want.RawData)) || off < end {
			t.Errorf("%s: location %q offset %d length %d (previous end %d)", tn.Name, loc, off, n, end)
			continue
		}
		if !bytes.Equal(data[off:off+n], want.RawData) {
			t.Errorf("%s: external bytes differ from the inline export", tn.Name)
		}
		end = off + n
	}
	if ext < 10 || end != res.DataBytes {
		t.Errorf("%d external tensors ending at %d, data file %d bytes", ext, end, res.DataBytes)
	}
}

// TestDeterministic: the same inputs give byte-identical files, and Export
// writes exactly what Build returns.
func TestDeterministic(t *testing.T) {
	cfg := tinyConfig(t, 10)
	params := randomParams(cfg, 8)
	p1, _ := exportFile(t, cfg, params, Options{Opset: 21})
	p2, _ := exportFile(t, cfg, params, Options{Opset: 21})
	b1, _ := os.ReadFile(p1)
	b2, _ := os.ReadFile(p2)
	m := build(t, cfg, params, Options{Opset: 21})
	b3, _ := m.Marshal()
	if !bytes.Equal(b1, b2) || !bytes.Equal(b1, b3) {
		t.Fatal("exports differ")
	}
}

// TestAtomic: a cancelled export leaves the previous file untouched and no
// temporary files behind.
func TestAtomic(t *testing.T) {
	cfg := tinyConfig(t, 10)
	params := randomParams(cfg, 9)
	dir := t.TempDir()
	path := filepath.Join(dir, "model.onnx")
	if err := os.WriteFile(path, []byte("previous"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []ExternalMode{ExternalNever, ExternalAlways} {
		ctx, cancel := context.WithCancel(context.Background())
		calls := 0
		_, err := Export(ctx, path, cfg, params, Options{External: mode, Progress: func(done, total int64) {
			if calls++; calls == 3 {
				cancel()
			}
		}})
		cancel()
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("%v: cancelled export returned %v", mode, err)
		}
		got, _ := os.ReadFile(path)
		if string(got) != "previous" {
			t.Fatalf("%v: the previous file was replaced", mode)
		}
		entries, _ := os.ReadDir(dir)
		if len(entries) != 1 {
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			t.Fatalf("%v: left behind %v", mode, names)
		}
	}
	// Progress reaches the total on success.
	var last, total int64
	if _, err := Export(context.Background(), path, cfg, params, Options{Progress: func(d, tot int64) { last, total = d, tot }}); err != nil {
		t.Fatal(err)
	}
	if last != total || total != 4*params.Count() {
		t.Errorf("progress ended at %d of %d, params %d", last, total, params.Count())
	}
}

// shapeOnly returns params with shapes and no data: enough to plan an export
// of a large architecture without allocating its weights.
func shapeOnly(cfg model.Config) model.Params {
	p := model.Params{}
	for _, s := range cfg.Spec() {
		p[s.Name] = &nn.Tensor{Shape: s.Shape}
	}
	return p
}

func TestExternalDecision(t *testing.T) {
	for _, c := range []struct {
		arch     string
		external bool
	}{{"R50x1", false}, {"R101x3", false}, {"R152x2", false}, {"R152x4", true}} {
		cfg, err := model.Arch(c.arch, 21843)
		if err != nil {
			t.Fatal(err)
		}
		p, err := newPlan(cfg, shapeOnly(cfg), Options{})
		if err != nil {
			t.Fatal(err)
		}
		ext, err := p.external()
		if err != nil || ext != c.external {
			t.Errorf("%s: auto chose external=%v (%v), want %v; inline size %d", c.arch, ext, err, c.external, p.inlineSize())
		}
		p.opts.External = ExternalNever
		if _, err := p.external(); c.external != errors.Is(err, ErrTooLarge) {
			t.Errorf("%s never: %v", c.arch, err)
		}
	}
	cfg, _ := model.Arch("R152x4", 1000)
	_, err := Export(context.Background(), filepath.Join(t.TempDir(), "m.onnx"), cfg, shapeOnly(cfg), Options{External: ExternalNever})
	if !errors.Is(err, ErrTooLarge) {
		t.Errorf("R152x4 never: %v", err)
	}
}
