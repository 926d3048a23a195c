package quantize

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"image"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/bitrun/bitrun/data"
	"github.com/bitrun/bitrun/eval"
	"github.com/bitrun/bitrun/export"
	"github.com/bitrun/bitrun/export/meta"
	"github.com/bitrun/bitrun/export/onnxpb"
	"github.com/bitrun/bitrun/internal/ort/onnxtest"
	"github.com/bitrun/bitrun/internal/testmodel"
	"github.com/bitrun/bitrun/model"
	"github.com/bitrun/bitrun/runtime"
)

const fashionDir = "/usr/share/datasets/fashion-mnist"

// requireORT skips (or fails under BITRUN_REQUIRE_ORT=1) without ONNX Runtime.
func requireORT(t testing.TB) {
	t.Helper()
	_, err := runtime.Version(runtime.Options{})
	onnxtest.Require(t, err)
}

// fashion opens a Fashion-MNIST split, skipping when it is not installed.
func fashion(t testing.TB, split string) data.Dataset {
	t.Helper()
	if _, err := os.Stat(fashionDir); err != nil {
		t.Skipf("Fashion-MNIST not installed at %s (scripts/setup.sh installs it): %v", fashionDir, err)
	}
	ds, err := data.Open(fashionDir, split)
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

var (
	tinyOnce sync.Once
	tinyPath string
	tinyErr  error
)

// tinyModel is the tiny BiT (model.Init, with a random non-zero head so
// that the logits differ between images) exported at 32 px with the
// Fashion-MNIST labels. Shared by the tests; read-only.
func tinyModel(t testing.TB) string {
	t.Helper()
	tinyOnce.Do(func() {
		dir, err := os.MkdirTemp("", "bitrun-quantize-test-")
		if err != nil {
			tinyErr = err
			return
		}
		cfg, params, err := testmodel.Tiny(10, 7, 0.5)
		if err != nil {
			tinyErr = err
			return
		}
		tinyPath = filepath.Join(dir, "tiny.onnx")
		_, tinyErr = export.Export(context.Background(), tinyPath, cfg, params,
			export.Options{Resolution: 32, Labels: data.FashionMNISTClasses})
	})
	if tinyErr != nil {
		t.Fatalf("making the tiny model: %v", tinyErr)
	}
	return tinyPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if tinyPath != "" {
		os.RemoveAll(filepath.Dir(tinyPath))
	}
	os.Exit(code)
}

// relabelled is a dataset whose labels are a model's own predictions, so
// that the fp32 model scores 100% and any int8 disagreement is a drop.
type relabelled struct {
	data.Dataset
	labels []int
}

func (r *relabelled) Label(i int) int { return r.labels[i] }

// predictions runs the model at path over ds and returns each top-1.
func predictions(t *testing.T, path string, ds data.Dataset) []int {
	t.Helper()
	c, err := eval.OpenONNX(path, runtime.Options{IntraThreads: 2}, eval.Overrides{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rec := &recorder{Classifier: c, k: 1}
	if _, err := eval.Run(context.Background(), rec, ds, eval.Options{Batch: 64}); err != nil {
		t.Fatal(err)
	}
	top1 := make([]int, len(rec.top))
	for i, top := range rec.top {
		top1[i] = top[0]
	}
	return top1
}

// TestQuantizeFashionMNIST quantizes the tiny model on real Fashion-MNIST
// images and checks the QDQ graph, the metadata, that ONNX Runtime fuses
// every convolution into QLinearConv, and that int8 and fp32 agree.
//
// Tolerance: on 500 test images the int8 model must pick the fp32 model's
// class on at least 85% of them and its logits must stay within 20% of the
// fp32 logits' spread (RMS). The tiny model is untrained (random trunk and
// head): its logit margins are small, so this is a loose bound; measured
// 89-90% agreement and 13-14% RMS error. A trained model does much better
// (the small BiT trained one epoch on Fashion-MNIST: 98.4% agreement on
// 2000 test images, top-1 75.20% -> 75.15%).
func TestQuantizeFashionMNIST(t *testing.T) {
	requireORT(t)
	in := tinyModel(t)
	train, test := fashion(t, "train"), fashion(t, "test")
	test = data.Subset(test, data.Shuffled(test.Len(), 3)[:500])
	for _, tc := range []struct {
		head        Head
		method      string
		minChannels int
	}{{HeadFloat, "minmax", 0}, {HeadInt8, "percentile:99.99", -1}, {HeadFloat, "entropy", 0}} {
		t.Run(tc.head.String()+"-"+tc.method, func(t *testing.T) {
			method, err := ParseMethod(tc.method)
			if err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(t.TempDir(), "int8.onnx")
			res, err := Quantize(context.Background(), in, out, Options{
				Calibration: train, CalibrationName: "fmnist (train)", Images: 128, Method: method,
				Head: tc.head, Eval: test, EvalName: "fmnist (test)", MaxDrop: 5, MinChannels: tc.minChannels,
				Runtime: runtime.Options{IntraThreads: 2},
			})
			if err != nil {
				t.Fatal(err)
			}
			if res.Accuracy.Agreement < 0.85 {
				t.Errorf("int8 agrees with fp32 on %.1f%% of images, want >= 85%%", 100*res.Accuracy.Agreement)
			}
			t.Logf("fp32 %.2f%% int8 %.2f%% drop %.2f agreement %.2f%%, %d -> %d bytes",
				100*res.Accuracy.FP32Top1, 100*res.Accuracy.Int8Top1, res.Accuracy.Drop, 100*res.Accuracy.Agreement, res.SourceBytes, res.Bytes)
			m, err := onnxpb.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			// The tiny model has three convolutions under 16 input channels:
			// the root (3) and block 1's 3×3 and last 1×1 (8).
			if want := map[bool]int{true: 0, false: 3}[tc.minChannels < 0]; res.FloatConvs != want {
				t.Errorf("%d convolutions kept float, want %d", res.FloatConvs, want)
			}
			checkQDQ(t, m, tc.head, res.FloatConvs)
			checkMeta(t, m, in, tc.method, tc.head)
			checkFused(t, out, res.Convs, res.FloatConvs)
			checkLogits(t, in, out, test)
		})
	}
}

// checkQDQ checks the graph: every Conv reads a DequantizeLinear'd
// activation and an int8 per-channel kernel and feeds only a
// QuantizeLinear; GroupNorm and softmax read no DequantizeLinear directly
// from a weight; the head follows h.
func checkQDQ(t *testing.T, m *onnxpb.Model, h Head, floatConvs int) {
	t.Helper()
	producer := map[string]*onnxpb.Node{}
	consumers := map[string][]*onnxpb.Node{}
	for _, n := range m.Graph.Nodes {
		for _, o := range n.Outputs {
			producer[o] = n
		}
		for _, i := range n.Inputs {
			consumers[i] = append(consumers[i], n)
		}
	}
	inits := map[string]*onnxpb.Tensor{}
	for _, t := range m.Graph.Initializers {
		inits[t.Name] = t
	}
	isDQ := func(name string) bool { p := producer[name]; return p != nil && p.OpType == "DequantizeLinear" }
	convs := 0
	for _, n := range m.Graph.Nodes {
		switch n.OpType {
		case "Conv":
			if w := inits[n.Inputs[1]]; w != nil && w.DataType == onnxpb.Float && w.Dims[1] < DefaultMinChannels && floatConvs > 0 {
				floatConvs--
				continue // kept float (MinChannels)
			}
			convs++
			if !isDQ(n.Inputs[0]) || !isDQ(n.Inputs[1]) {
				t.Fatalf("conv %s inputs %v are not both dequantized", n.Name, n.Inputs)
			}
			wdq := producer[n.Inputs[1]]
			w, s := inits[wdq.Inputs[0]], inits[wdq.Inputs[1]]
			if w == nil || w.DataType != onnxpb.Int8 || s == nil || len(s.Dims) != 1 || s.Dims[0] != w.Dims[0] {
				t.Fatalf("conv %s: kernel %v is not int8 with one scale per output channel", n.Name, wdq.Inputs)
			}
			if a := wdq.Attr("axis"); a == nil || a.I != 0 {
				t.Fatalf("conv %s: weight DequantizeLinear axis %v, want 0", n.Name, a)
			}
			if adq := producer[n.Inputs[0]]; len(consumers[adq.Outputs[0]]) != 1 {
				t.Fatalf("conv %s shares its input DequantizeLinear", n.Name)
			}
			cs := consumers[n.Outputs[0]]
			if len(cs) != 1 || cs[0].OpType != "QuantizeLinear" {
				t.Fatalf("conv %s output goes to %d nodes, want one QuantizeLinear", n.Name, len(cs))
			}
			if zp := inits[cs[0].Inputs[2]]; zp == nil || zp.DataType != onnxpb.Uint8 {
				t.Fatalf("conv %s: activation zero point is not uint8", n.Name)
			}
		case "ReduceMean", "Sqrt", "Div", "Softmax":
			for _, i := range n.Inputs {
				if isDQ(i) {
					t.Fatalf("%s %s reads a DequantizeLinear: GroupNorm and softmax must stay float", n.OpType, n.Name)
				}
			}
		case "Gemm":
			if got := isDQ(n.Inputs[0]) && isDQ(n.Inputs[1]); got != (h == HeadInt8) {
				t.Fatalf("head %s quantized = %v, want head %s", n.Name, got, h)
			}
		case "QLinearConv", "ConvInteger":
			t.Fatalf("unexpected %s in a QDQ graph", n.OpType)
		}
	}
	if convs == 0 || floatConvs != 0 {
		t.Fatalf("%d quantized convolutions, %d float ones not found", convs, floatConvs)
	}
}

func checkMeta(t *testing.T, m *onnxpb.Model, in, method string, h Head) {
	t.Helper()
	md := m.Metadata()
	raw, err := os.ReadFile(in)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(raw)
	want := map[string]string{
		MetaQuantized: QuantizedValue, MetaMethod: method, MetaHead: h.String(),
		MetaSourceModel: hex.EncodeToString(sum[:]), meta.Resolution: "32", meta.Arch: "tiny",
	}
	for k, v := range want {
		if md[k] != v {
			t.Errorf("metadata %s = %q, want %q", k, md[k], v)
		}
	}
	var ci CalibrationInfo
	if err := json.Unmarshal([]byte(md[MetaCalibration]), &ci); err != nil || ci.Images != 128 || ci.Data != "fmnist (train)" || ci.Size != 32 {
		t.Errorf("metadata %s = %s (%v)", MetaCalibration, md[MetaCalibration], err)
	}
	var acc Accuracy
	if err := json.Unmarshal([]byte(md[MetaAccuracy]), &acc); err != nil || acc.Images != 500 {
		t.Errorf("metadata %s = %s (%v)", MetaAccuracy, md[MetaAccuracy], err)
	}
}

// checkFused opens the int8 model with ONNX Runtime's optimized-model dump
// and checks that every convolution runs as an integer kernel.
func checkFused(t *testing.T, path string, convs, floatConvs int) {
	t.Helper()
	dump := filepath.Join(t.TempDir(), "optimized.onnx")
	p, err := runtime.Open(path, runtime.Options{IntraThreads: 1, OptimizedModelPath: dump})
	if err != nil {
		t.Fatal(err)
	}
	p.Close()
	m, err := onnxpb.ReadFile(dump)
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	for _, n := range m.Graph.Nodes {
		counts[n.OpType]++
	}
	if counts["QLinearConv"] != convs || counts["Conv"]+counts["FusedConv"] != floatConvs {
		t.Errorf("ONNX Runtime runs QLinearConv %d, Conv %d, FusedConv %d; want %d integer and %d float convolutions (%s)",
			counts["QLinearConv"], counts["Conv"], counts["FusedConv"], convs, floatConvs, describe(m))
	}
}

// checkLogits compares the logits of both models on 64 images.
func checkLogits(t *testing.T, fp32, int8 string, ds data.Dataset) {
	t.Helper()
	run := func(path string) []float32 {
		p, err := runtime.Open(path, runtime.Options{IntraThreads: 2})
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		x := make([]float32, 64*3*32*32)
		if err := data.Batch(ds, seq(64), 32, 3, data.Norm{Mean: [3]float32{0.5, 0.5, 0.5}, Std: [3]float32{0.5, 0.5, 0.5}}, false, nil, x); err != nil {
			t.Fatal(err)
		}
		out, err := p.Run(context.Background(), x, []int64{64, 3, 32, 32})
		if err != nil {
			t.Fatal(err)
		}
		return out[export.OutputLogits].Data
	}
	a, b := run(fp32), run(int8)
	var mean, spread, diff float64
	for _, v := range a {
		mean += float64(v)
	}
	mean /= float64(len(a))
	for i := range a {
		spread += (float64(a[i]) - mean) * (float64(a[i]) - mean)
		diff += float64(a[i]-b[i]) * float64(a[i]-b[i])
	}
	rel := math.Sqrt(diff / spread)
	t.Logf("int8 logits: RMS error %.3f of the fp32 spread", rel)
	if rel > 0.20 {
		t.Errorf("int8 logits RMS error is %.3f of the fp32 logits' spread, want <= 0.20", rel)
	}
}

func seq(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

// TestGuardRefuses: on labels that are the fp32 model's own predictions
// (fp32 scores 100%), a crude calibration (clipping at the median) loses
// accuracy; the guard refuses and writes nothing, and Force writes.
func TestGuardRefuses(t *testing.T) {
	requireORT(t)
	in := tinyModel(t)
	train, test := fashion(t, "train"), fashion(t, "test")
	test = data.Subset(test, seq(200))
	test = &relabelled{Dataset: test, labels: predictions(t, in, test)}
	out := filepath.Join(t.TempDir(), "int8.onnx")
	opts := Options{Calibration: train, Images: 32, Method: Method{Percentile: 50}, Head: HeadInt8,
		Eval: test, MaxDrop: 0.5, Runtime: runtime.Options{IntraThreads: 2}}
	res, err := Quantize(context.Background(), in, out, opts)
	if !errors.Is(err, ErrAccuracy) {
		t.Fatalf("err = %v, want ErrAccuracy", err)
	}
	if res == nil || res.Accuracy == nil || res.Accuracy.FP32Top1 != 1 || res.Accuracy.Drop <= 0.5 || res.Path != "" {
		t.Fatalf("refused result %+v", res)
	}
	if _, serr := os.Stat(out); !errors.Is(serr, os.ErrNotExist) {
		t.Fatalf("%s written by a refused quantization (%v)", out, serr)
	}
	t.Logf("refused: %v", err)
	opts.Force = true
	if res, err = Quantize(context.Background(), in, out, opts); err != nil || res.Path != out {
		t.Fatalf("forced: %v", err)
	}
	m, err := onnxpb.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(m.Metadata()[MetaAccuracy], `"forced":true`) {
		t.Errorf("forced model's accuracy record %s", m.Metadata()[MetaAccuracy])
	}
}

// TestGuardAgreement: an evaluation set whose classes are not the model's
// (3 against 10, like Fashion-MNIST against a zoo model's 21843) switches
// the automatic guard to fp32/int8 agreement. The int8 copy of the tiny
// untrained model picks another class than the fp32 one on a few percent
// of the images (3% measured), so a 1-point limit refuses it and writes
// nothing; a 50-point limit writes it with the agreement record in the
// metadata.
func TestGuardAgreement(t *testing.T) {
	requireORT(t)
	in := tinyModel(t)
	train, test := fashion(t, "train"), fashion(t, "test")
	test = fewClasses{data.Subset(test, seq(200))}
	out := filepath.Join(t.TempDir(), "int8.onnx")
	opts := Options{Calibration: train, Images: 32, Eval: test, MaxDrop: 1, Runtime: runtime.Options{IntraThreads: 2}}
	res, err := Quantize(context.Background(), in, out, opts)
	if !errors.Is(err, ErrAccuracy) || !strings.Contains(err.Error(), "disagreement") {
		t.Fatalf("err = %v, want ErrAccuracy on the disagreement", err)
	}
	a := res.Accuracy
	t.Logf("refused: %v (top-5 agreement %.2f%%)", err, 100*a.Top5Agreement)
	switch {
	case a.Guard != "agreement" || a.Images != 200 || a.FP32Top1 != 0 || a.Int8Top1 != 0:
		t.Errorf("accuracy %+v, want the agreement guard on 200 images without top-1", a)
	case a.Drop != round4(100*(1-a.Agreement)) || a.Drop <= 1:
		t.Errorf("drop %v, agreement %v", a.Drop, a.Agreement)
	case a.Top5Agreement < a.Agreement || a.Top5Agreement > 1:
		t.Errorf("top-5 agreement %v below top-1 agreement %v", a.Top5Agreement, a.Agreement)
	case res.FP32 != nil || res.Int8 != nil:
		t.Errorf("reports against labels under the agreement guard")
	}
	if _, serr := os.Stat(out); !errors.Is(serr, os.ErrNotExist) {
		t.Fatalf("%s written by a refused quantization (%v)", out, serr)
	}
	opts.MaxDrop = 50
	if res, err = Quantize(context.Background(), in, out, opts); err != nil {
		t.Fatal(err)
	}
	m, err := onnxpb.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var rec map[string]any
	if err := json.Unmarshal([]byte(m.Metadata()[MetaAccuracy]), &rec); err != nil {
		t.Fatal(err)
	}
	if rec["guard"] != "agreement" || rec["fp32_top1"] != nil || rec["top5_agreement"] == nil || rec["drop_points"] != res.Accuracy.Drop {
		t.Errorf("accuracy record %v", rec)
	}
}

// fewClasses is a dataset that claims another class count.
type fewClasses struct{ data.Dataset }

func (fewClasses) Classes() []string { return []string{"a", "b", "c"} }

// grayImages is a small synthetic 10-class dataset of gray gradients.
type grayImages struct{ n int }

func (g grayImages) Len() int          { return g.n }
func (g grayImages) Classes() []string { return data.FashionMNISTClasses }
func (g grayImages) Label(i int) int   { return i % 10 }
func (g grayImages) Image(i int) (image.Image, error) {
	img := image.NewGray(image.Rect(0, 0, 28, 28))
	for j := range img.Pix {
		img.Pix[j] = uint8(i*7 + j)
	}
	return img, nil
}

// edited writes a copy of the model at in changed by edit.
func edited(t *testing.T, in string, edit func(m *onnxpb.Model)) string {
	t.Helper()
	m, err := onnxpb.ReadFile(in)
	if err != nil {
		t.Fatal(err)
	}
	edit(m)
	path := filepath.Join(t.TempDir(), "edited.onnx")
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestBadInputs: each bad input fails with its error and writes no OUT.
func TestBadInputs(t *testing.T) {
	requireORT(t)
	in := tinyModel(t)
	dir := t.TempDir()
	good := Options{Calibration: grayImages{64}, Images: 16, MaxDrop: -1, Runtime: runtime.Options{IntraThreads: 1}}

	quantized := filepath.Join(dir, "quantized.onnx")
	if _, err := Quantize(context.Background(), in, quantized, good); err != nil {
		t.Fatal(err)
	}
	notBiT, err := onnxtest.Classifier{C: 3, K: 10, W: make([]float32, 30), B: make([]float32, 10)}.Model().Write(dir, "other.onnx")
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := model.Arch("tiny", 10)
	trainable := filepath.Join(dir, "trainable.onnx")
	if _, err := export.Export(context.Background(), trainable, cfg, model.Init(cfg, 1), export.Options{Trainable: true}); err != nil {
		t.Fatal(err)
	}
	nanGamma := edited(t, in, func(m *onnxpb.Model) {
		for _, tn := range m.Graph.Initializers {
			if strings.HasSuffix(tn.Name, "/a/group_norm/gamma") {
				v, _ := tn.Floats()
				v[0] = float32(math.NaN())
				tn.RawData = onnxpb.Float32Bytes(v)
				return
			}
		}
		t.Fatal("no GroupNorm gamma found")
	})
	oneChannel := edited(t, in, func(m *onnxpb.Model) {
		m.Graph.Inputs[0].Shape[1] = onnxpb.Dim{Value: 1}
	})
	withOpts := func(f func(o *Options)) Options { o := good; f(&o); return o }
	for _, tc := range []struct {
		name string
		in   string
		opts Options
		want error
		msg  string
	}{
		{"not bitrun", notBiT, good, ErrNotBiT, "only bitrun exports"},
		{"trainable export", trainable, good, ErrNotBiT, "trainable"},
		{"already quantized", quantized, good, ErrQuantized, "bitrun.quantized"},
		{"class mismatch", in, withOpts(func(o *Options) { o.Calibration, o.Guard = fewClasses{o.Calibration}, GuardLabels }), ErrData, "3 classes, the model 10"},
		{"channel mismatch", oneChannel, good, ErrData, "reads 3"},
		{"too few images", in, withOpts(func(o *Options) { o.Images = 65 }), ErrData, "64 images, 65 asked"},
		{"NaN activations", nanGamma, good, ErrNonFinite, "NaN"},
		{"eval class mismatch", in, withOpts(func(o *Options) { o.Eval, o.MaxDrop, o.Guard = fewClasses{grayImages{8}}, 1, GuardLabels }), ErrData, "evaluation set"},
		{"bad guard", in, withOpts(func(o *Options) { o.Guard = 7 }), ErrOptions, "guard 7"},
		{"entropy and percentile", in, withOpts(func(o *Options) { o.Method = Method{Percentile: 99, Entropy: true} }), ErrOptions, "exclusive"},
		{"no guard data", in, withOpts(func(o *Options) { o.MaxDrop = 0 }), ErrOptions, "evaluation split"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out.onnx")
			_, err := Quantize(context.Background(), tc.in, out, tc.opts)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("err = %v, want %v containing %q", err, tc.want, tc.msg)
			}
			if _, serr := os.Stat(out); !errors.Is(serr, os.ErrNotExist) {
				t.Fatalf("OUT written despite the error (%v)", serr)
			}
		})
	}
}

// TestPercentileStats checks the streaming histogram against exact
// percentiles, across range growth.
func TestPercentileStats(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	s := newRangeStats("x", Method{Percentile: 99})
	var all []float64
	for b := range 20 {
		x := make([]float32, 5000)
		for i := range x {
			x[i] = float32(rng.ExpFloat64() * float64(b+1)) // later batches widen the range
			all = append(all, float64(x[i]))
		}
		if err := s.add(x); err != nil {
			t.Fatal(err)
		}
	}
	lo, hi := s.bounds(Method{Percentile: 99})
	exact := quantile(all, 0.99)
	if lo != 0 || math.Abs(float64(hi)-exact) > 0.01*exact+s.top/histBins {
		t.Fatalf("percentile 99: got [%v, %v], exact %v (bin %v)", lo, hi, exact, s.top/histBins)
	}
	if _, mhi := s.bounds(MinMax); float64(mhi) < exact {
		t.Fatalf("min-max bound %v below the 99th percentile %v", mhi, exact)
	}
	if err := s.add([]float32{1, float32(math.Inf(1))}); !errors.Is(err, ErrNonFinite) {
		t.Fatalf("Inf: err = %v", err)
	}
}

// TestEntropyStats checks the entropy threshold on known distributions fed
// in batches: for a uniform distribution every clip loses information, so
// the threshold stays near the maximum (within 5%), and near it (within
// 30%) for a ReLU'd Gaussian; for a heavy tail (a Student t with 2 degrees
// of freedom, whose maximum over 100k draws is tens of times its 99th
// percentile) it clips far below the maximum (under a third) but above the
// bulk (the 99th percentile of |x|). A signed tensor is clipped on both
// sides; a non-negative one keeps its zero floor.
func TestEntropyStats(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, tc := range []struct {
		name string
		draw func() float64
		// want checks the threshold against the largest |x| and the exact
		// 99th percentile of |x|.
		want func(thr, amax, p99 float64) bool
	}{
		{"uniform", func() float64 { return rng.Float64() }, func(thr, amax, _ float64) bool { return thr >= 0.95*amax }},
		{"signed uniform", func() float64 { return 2*rng.Float64() - 1 }, func(thr, amax, _ float64) bool { return thr >= 0.95*amax }},
		// A ReLU output: half exact zeros (kept out of the histogram: their
		// spike would otherwise be smeared over the first quantization step
		// and pull the threshold down to about 1.3 standard deviations).
		{"relu gaussian", func() float64 { return max(0, rng.NormFloat64()) }, func(thr, amax, p99 float64) bool { return thr >= 0.7*amax }},
		{"student t2", func() float64 {
			z, g1, g2 := rng.NormFloat64(), rng.NormFloat64(), rng.NormFloat64()
			return z / math.Sqrt((g1*g1+g2*g2)/2) // N(0,1) / sqrt(χ²₂/2)
		}, func(thr, amax, p99 float64) bool { return thr < amax/3 && thr > p99 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newRangeStats("x", Entropy)
			var abs []float64
			for range 20 {
				x := make([]float32, 5000)
				for i := range x {
					x[i] = float32(tc.draw())
					abs = append(abs, math.Abs(float64(x[i])))
				}
				if err := s.add(x); err != nil {
					t.Fatal(err)
				}
			}
			lo, hi := s.bounds(Entropy)
			amax := slices.Max(abs)
			thr := float64(max(hi, -lo))
			slices.Sort(abs)
			p99 := abs[int(0.99*float64(len(abs)))]
			t.Logf("range [%.4g, %.4g] of [%.4g, %.4g]; max |x| %.4g, p99 %.4g", lo, hi, s.min, s.max, amax, p99)
			if !tc.want(thr, amax, p99) {
				t.Errorf("threshold %.4g: max |x| %.4g, 99th percentile %.4g", thr, amax, p99)
			}
			if s.min >= 0 && lo != 0 {
				t.Errorf("non-negative tensor: low bound %v", lo)
			}
		})
	}
	if got := entropyBins(make([]int64, histBins), 128); got != 1 {
		t.Errorf("empty histogram: %d bins", got)
	}
}

func quantile(v []float64, q float64) float64 {
	c := slices.Clone(v)
	slices.Sort(c)
	return c[int(math.Ceil(q*float64(len(c))))-1]
}

// TestParse covers the option parsers.
func TestParse(t *testing.T) {
	for s, want := range map[string]string{"minmax": "minmax", "percentile": "percentile:99.99", "percentile:99.9": "percentile:99.9", "entropy": "entropy", "KL": "entropy"} {
		m, err := ParseMethod(s)
		if err != nil || m.String() != want {
			t.Errorf("ParseMethod(%q) = %v, %v; want %s", s, m, err, want)
		}
	}
	for _, s := range []string{"entropy:1", "percentile:100", "percentile:x", "percentile:10"} {
		if _, err := ParseMethod(s); !errors.Is(err, ErrOptions) {
			t.Errorf("ParseMethod(%q) err = %v", s, err)
		}
	}
	if h, err := ParseHead("int8"); err != nil || h != HeadInt8 {
		t.Errorf("ParseHead(int8) = %v, %v", h, err)
	}
	if _, err := ParseHead("int4"); !errors.Is(err, ErrOptions) {
		t.Errorf("ParseHead(int4) err = %v", err)
	}
	for s, want := range map[string]Guard{"": GuardAuto, "auto": GuardAuto, "labels": GuardLabels, "agreement": GuardAgreement} {
		if g, err := ParseGuard(s); err != nil || g != want || (s != "" && g.String() != s) {
			t.Errorf("ParseGuard(%q) = %v, %v", s, g, err)
		}
	}
	if _, err := ParseGuard("top5"); !errors.Is(err, ErrOptions) {
		t.Errorf("ParseGuard(top5) err = %v", err)
	}
	q, s := int8PerChannel([]float32{1, -0.5, 0.25, 0, 0, 0}, 2, false)
	if s[0] != 1.0/127 || q[0] != 127 || q[1] != -64 || s[1] != 1 || q[3] != 0 {
		t.Errorf("int8PerChannel: q %v scales %v", q, s)
	}
	if sc, z := uint8Params(-1, 1); (z != 127 && z != 128) || math.Abs(float64(sc)-2.0/255) > 1e-9 {
		t.Errorf("uint8Params(-1, 1) = %v, %v", sc, z)
	}
}
