package finetune

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/bitrun/bitrun/data"
	"github.com/bitrun/bitrun/eval"
	"github.com/bitrun/bitrun/model"
	"github.com/bitrun/bitrun/nn"
	"github.com/bitrun/bitrun/runtime"
	"github.com/bitrun/bitrun/train"
)

// TestHeadGradientsMatchNet checks the head trainer's forward and backward on
// trunk activations against train.Net with the "head+gn" preset on the
// images themselves: same loss, same gradients of the four head parameters.
func TestHeadGradientsMatchNet(t *testing.T) {
	cfg, src := tinySource(t)
	cfg.Classes = 4
	params := model.ReplaceHead(src, 4)
	// A non-zero head and GN affine, so every gradient path is exercised.
	for i := range params[model.HeadKernel].Data {
		params[model.HeadKernel].Data[i] = 0.02 * float32(i%11-5)
	}
	for i := range params[model.HeadGamma].Data {
		params[model.HeadGamma].Data[i] = 1 + 0.01*float32(i%5)
		params[model.HeadBeta].Data[i] = 0.01 * float32(i%3-1)
	}
	ds := newSynth(6, 1)
	const res = 32
	x := nn.New(6, 3, res, res)
	labels := make([]int, 6)
	for i := 0; i < 6; i++ {
		img, _ := ds.Image(i)
		data.EvalTensor(img, res, 3, data.BiTNorm, x.Data[i*3*res*res:(i+1)*3*res*res])
		labels[i] = ds.Label(i)
	}
	targets := make([]float32, 6*4)
	if err := train.OneHot(labels, 4, targets); err != nil {
		t.Fatal(err)
	}
	trainable, _ := train.Preset(train.PresetHeadGN)
	net, err := train.NewNet(cfg, params, trainable)
	if err != nil {
		t.Fatal(err)
	}
	want, _, err := net.ForwardBackward(x, targets, 1/float32(6))
	if err != nil {
		t.Fatal(err)
	}
	want /= 6
	wantGrads := net.Grads()

	tr, err := newNativeTrunk(cfg, params)
	if err != nil {
		t.Fatal(err)
	}
	act, shape, err := tr.Run(context.Background(), x.Data, 6, res)
	if err != nil {
		t.Fatal(err)
	}
	ht := newHeadTrainer(cfg, params, &actCache{}, 6, 0, false, 0, nil, 0.9)
	got, _, err := ht.gradients(nn.FromData(append([]float32(nil), act...), 6, shape[0], shape[1], shape[2]), targets, labels)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(got-want) > 1e-5*math.Max(1, want) {
		t.Errorf("loss %g, train.Net %g", got, want)
	}
	for _, name := range headNames {
		g, w := ht.grads[name].Data, wantGrads[name].Data
		scale := 0.0
		for _, v := range w {
			scale = math.Max(scale, math.Abs(float64(v)))
		}
		if scale == 0 {
			t.Fatalf("%s: zero reference gradient (vacuous test)", name)
		}
		if d := maxAbsDiff(g, w); d > 1e-4*scale {
			t.Errorf("%s: max |diff| %g (scale %g)", name, d, scale)
		}
	}
}

// TestNativeTrunkMatchesForward checks that trunk activations through the
// head tail give model.Model.Forward's logits.
func TestNativeTrunkMatchesForward(t *testing.T) {
	cfg, params := tinySource(t)
	m, err := model.New(cfg, params)
	if err != nil {
		t.Fatal(err)
	}
	ds := newSynth(3, 2)
	const res = 24
	x := nn.New(3, 3, res, res)
	for i := 0; i < 3; i++ {
		img, _ := ds.Image(i)
		data.EvalTensor(img, res, 3, data.BiTNorm, x.Data[i*3*res*res:(i+1)*3*res*res])
	}
	_, feats := m.Forward(x)
	tr, _ := newNativeTrunk(cfg, params)
	act, shape, err := tr.Run(context.Background(), x.Data, 3, res)
	if err != nil {
		t.Fatal(err)
	}
	h := nn.FromData(act, 3, shape[0], shape[1], shape[2])
	f := nn.GlobalAvgPool(nn.ReLUInPlace(nn.GroupNorm(h, cfg.Groups, params[model.HeadGamma].Data, params[model.HeadBeta].Data)))
	if d := maxAbsDiff(f.Data, feats.Data); d > 1e-5 {
		t.Errorf("features differ by %g", d)
	}
	if _, _, err := tr.Run(context.Background(), x.Data[:5], 3, res); err == nil {
		t.Error("short input accepted")
	}
}

// TestORTTrunkMatchesNative compares the exported trunk graph run by ONNX
// Runtime with the native trunk.
func TestORTTrunkMatchesNative(t *testing.T) {
	requireORT(t)
	cfg, params := tinySource(t)
	ds := newSynth(4, 3)
	const res = 32
	x := make([]float32, 4*3*res*res)
	for i := 0; i < 4; i++ {
		img, _ := ds.Image(i)
		data.EvalTensor(img, res, 3, data.BiTNorm, x[i*3*res*res:(i+1)*3*res*res])
	}
	ort, err := newTrunk(cfg, params, EngineORT, t.TempDir(), runtime.Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ort.Close()
	if ort.Name() != "onnxruntime" {
		t.Fatalf("engine %s", ort.Name())
	}
	nat, _ := newNativeTrunk(cfg, params)
	a, sa, err := ort.Run(context.Background(), x, 4, res)
	if err != nil {
		t.Fatal(err)
	}
	b, sb, err := nat.Run(context.Background(), x, 4, res)
	if err != nil {
		t.Fatal(err)
	}
	if sa != sb || sa[0] != cfg.FeatureDim() {
		t.Fatalf("shapes %v vs %v", sa, sb)
	}
	if d := maxAbsDiff(a, b); d > 1e-3 {
		t.Errorf("ORT and native trunk differ by %g", d)
	}
}

func runOpts(t *testing.T, mode string) Options {
	_, src := tinySource(t)
	return Options{Mode: mode, Rule: testRule(), Batch: 8, Views: 2, Seed: 3, Source: src, OutDir: t.TempDir(),
		Engine: EngineNative, CheckpointEvery: 2, EvalBatch: 16}
}

// interruptAt cancels the run when it reports training step `at`.
func interruptAt(o *Options, at int) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	o.Progress = func(p train.Progress) {
		if p.Phase == "train" && p.Step == at {
			cancel()
		}
	}
	return ctx
}

// TestResume kills a run (context cancelled mid-schedule), resumes it in the
// same folder and checks that it ends exactly where an uninterrupted run ends,
// in both modes.
func TestResume(t *testing.T) {
	trainSet, testSet := newSynth(24, 10), newSynth(16, 11)
	for _, mode := range []string{ModeHead, ModeFull} {
		t.Run(mode, func(t *testing.T) {
			ref := runOpts(t, mode)
			want, err := Run(context.Background(), ref, trainSet, testSet)
			if err != nil {
				t.Fatal(err)
			}
			o := runOpts(t, mode)
			ctx := interruptAt(&o, 3)
			if _, err := Run(ctx, o, trainSet, testSet); !errors.Is(err, context.Canceled) {
				t.Fatalf("interrupted run: %v", err)
			}
			o.Progress = nil
			if _, err := Run(context.Background(), o, trainSet, testSet); !errors.Is(err, ErrRunExists) {
				t.Fatalf("rerun without resume: %v, want ErrRunExists", err)
			}
			o.Resume = true
			got, err := Run(context.Background(), o, trainSet, testSet)
			if err != nil {
				t.Fatal(err)
			}
			if got.ResumedAt != 3 {
				t.Errorf("resumed at %d, want 3", got.ResumedAt)
			}
			wp, err := model.LoadNPZ(want.Weights)
			if err != nil {
				t.Fatal(err)
			}
			gp, err := model.LoadNPZ(got.Weights)
			if err != nil {
				t.Fatal(err)
			}
			equalParams(t, gp, wp)
			if got.FinalTop1 != want.FinalTop1 || got.FinalLoss != want.FinalLoss {
				t.Errorf("resumed top1 %g loss %g, uninterrupted %g %g", got.FinalTop1, got.FinalLoss, want.FinalTop1, want.FinalLoss)
			}
			lines, lrs := metricSteps(t, filepath.Join(o.OutDir, train.MetricsFile))
			if len(lines) != 6 || lines[0] != 1 || lines[5] != 6 {
				t.Errorf("metrics steps %v, want 1..6 once each", lines)
			}
			// Both modes follow the rule's lr (warmup, each decay) at the batch.
			for i, lr := range lrs {
				if want := o.Rule.LR(lines[i]-1, o.Batch); math.Abs(lr-want) > 1e-9*want+1e-15 {
					t.Errorf("step %d lr %g, want %g", lines[i], lr, want)
				}
			}
			// A changed recipe is not the same run.
			o.Rule.Steps = 7
			if _, err := Run(context.Background(), o, trainSet, testSet); !errors.Is(err, ErrResumeMismatch) {
				t.Errorf("resume with other options: %v, want ErrResumeMismatch", err)
			}
		})
	}
}

func metricSteps(t *testing.T, path string) (steps []int, lrs []float64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytesReader(b))
	for dec.More() {
		var m metricLine
		if err := dec.Decode(&m); err != nil {
			t.Fatal(err)
		}
		steps, lrs = append(steps, m.Step), append(lrs, m.LR)
	}
	return steps, lrs
}

// TestRunFolder runs head mode with adaptation and checks the run folder,
// the record, the schedule actually used and the summary.
func TestRunFolder(t *testing.T) {
	trainSet, testSet := newSynth(32, 20), newSynth(16, 21)
	o := runOpts(t, ModeHead)
	o.Rule.MixupAlpha = 0.1
	o.AdaptResolution = 24
	o.AdaptSteps = 4
	o.Changes = []string{"steps 500 -> 6 (test)"}
	sum, err := Run(context.Background(), o, trainSet, testSet)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{RuleFile, train.MetricsFile, train.WeightsFile, ModelFile, train.CurveFile, ConfusionFile, train.SummaryFile, train.CheckpointFile} {
		if st, err := os.Stat(filepath.Join(o.OutDir, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s missing or empty: %v", f, err)
		}
	}
	var rec RunRecord
	b, _ := os.ReadFile(filepath.Join(o.OutDir, RuleFile))
	if err := json.Unmarshal(b, &rec); err != nil {
		t.Fatal(err)
	}
	if rec.LR != 0.05 || rec.MixUpOn != "trunk activations" || rec.Views != 2 || rec.TrainExamples != 32 || rec.Replacement {
		t.Errorf("record %+v", rec)
	}
	if len(rec.Changes) != 1 {
		t.Errorf("changes %v", rec.Changes)
	}
	// The lr of each logged step follows the rule at the run's batch.
	b, _ = os.ReadFile(filepath.Join(o.OutDir, train.MetricsFile))
	dec := json.NewDecoder(bytesReader(b))
	for dec.More() {
		var m metricLine
		if err := dec.Decode(&m); err != nil {
			t.Fatal(err)
		}
		if want := o.Rule.LR(m.Step-1, 8); math.Abs(m.LR-want) > 1e-12 {
			t.Errorf("step %d lr %g, want %g", m.Step, m.LR, want)
		}
	}
	if sum.Adapt == nil || sum.Adapt.Resolution != 24 || sum.TestRes != 24 || sum.Adapt.Steps != 4 {
		t.Fatalf("adapt summary %+v, test res %d", sum.Adapt, sum.TestRes)
	}
	if sum.FinalTop1 != sum.Adapt.Top1After || sum.TrainRes != 16 {
		t.Errorf("final top1 %g, adapt after %g, train res %d", sum.FinalTop1, sum.Adapt.Top1After, sum.TrainRes)
	}
	if sum.Trainable != int64(2*cfgFeat(t)+cfgFeat(t)*4+4) {
		t.Errorf("trainable %d", sum.Trainable)
	}
	// The trunk is untouched by head training and adaptation.
	w, err := model.LoadNPZ(sum.Weights)
	if err != nil {
		t.Fatal(err)
	}
	for name, v := range o.Source {
		if name == model.HeadKernel || name == model.HeadBias || name == model.HeadGamma || name == model.HeadBeta {
			continue
		}
		if maxAbsDiff(v.Data, w[name].Data) != 0 {
			t.Errorf("%s changed in head mode", name)
		}
	}
	if maxAbsDiff(w[model.HeadGamma].Data, o.Source[model.HeadGamma].Data) == 0 {
		t.Error("pre-head GroupNorm gamma not trained")
	}
}

func cfgFeat(t *testing.T) int {
	cfg, _ := tinySource(t)
	return cfg.FeatureDim()
}

// TestONNXMatchesNative checks that the exported model.onnx, run by ONNX
// Runtime through eval with the preprocessing from its metadata, gives the
// native engine's final accuracy.
func TestONNXMatchesNative(t *testing.T) {
	requireORT(t)
	trainSet, testSet := newSynth(32, 30), newSynth(48, 31)
	o := runOpts(t, ModeHead)
	o.Engine = EngineAuto
	o.AdaptResolution = 20
	sum, err := Run(context.Background(), o, trainSet, testSet)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Engine != "onnxruntime" {
		t.Errorf("trunk engine %q, want onnxruntime", sum.Engine)
	}
	c, err := eval.OpenONNX(sum.ONNX, runtime.Options{}, eval.Overrides{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Preprocess().Size != 20 {
		t.Errorf("ONNX preprocessing size %d, want the test resolution 20", c.Preprocess().Size)
	}
	rep, err := eval.Run(context.Background(), c, testSet, eval.Options{Batch: 16})
	if err != nil {
		t.Fatal(err)
	}
	if d := math.Abs(float64(rep.Top1) - sum.FinalTop1); d > 0.001 {
		t.Errorf("ONNX top-1 %g, native %g", float64(rep.Top1), sum.FinalTop1)
	}
}

// TestFewShot checks the per-class selection and sampling with replacement
// when the batch exceeds the selected examples.
func TestFewShot(t *testing.T) {
	trainSet, testSet := newSynth(40, 40), newSynth(8, 41)
	sel := Select(trainSet, 2, 5)
	if sel.Len() != 8 {
		t.Fatalf("2 per class of 4 classes: %d examples", sel.Len())
	}
	count := map[int]int{}
	for i := 0; i < sel.Len(); i++ {
		count[sel.Label(i)]++
	}
	for c := 0; c < 4; c++ {
		if count[c] != 2 {
			t.Errorf("class %d: %d examples", c, count[c])
		}
	}
	if Select(trainSet, 0, 5) != data.Dataset(trainSet) {
		t.Error("k = 0 does not use the whole set")
	}
	for _, mode := range []string{ModeHead, ModeFull} {
		o := runOpts(t, mode)
		o.ExamplesPerClass = 2
		o.Batch = 16 // > 8 examples
		o.Rule.Steps, o.Rule.Decays, o.Rule.Warmup = 2, nil, 1
		sum, err := Run(context.Background(), o, trainSet, testSet)
		if err != nil {
			t.Fatal(mode, err)
		}
		if !sum.Run.Replacement || sum.Run.TrainExamples != 8 || sum.Run.ExamplesPerClass != 2 {
			t.Errorf("%s: record %+v", mode, sum.Run)
		}
	}
}

func TestOptionErrors(t *testing.T) {
	trainSet, testSet := newSynth(8, 1), newSynth(8, 2)
	cases := []struct {
		name string
		mod  func(*Options)
	}{
		{"mode", func(o *Options) { o.Mode = "trunk" }},
		{"batch split", func(o *Options) { o.BatchSplit = 3 }},
		{"decays", func(o *Options) { o.Rule.Decays = []int{4, 3} }},
		{"warmup", func(o *Options) { o.Rule.Warmup = 6 }},
		{"crop", func(o *Options) { o.Rule.Resize = 8 }},
		{"no source", func(o *Options) { o.Source = nil }},
		{"no out", func(o *Options) { o.OutDir = "" }},
		{"adapt", func(o *Options) { o.AdaptResolution = 4 }},
		{"engine", func(o *Options) { o.Engine = "gpu"; o.Mode = ModeHead }},
	}
	for _, c := range cases {
		o := runOpts(t, ModeFull)
		c.mod(&o)
		if _, err := Run(context.Background(), o, trainSet, testSet); !errors.Is(err, ErrOptions) {
			t.Errorf("%s: %v, want ErrOptions", c.name, err)
		}
	}
	o := runOpts(t, ModeHead)
	o.MaxCacheBytes = 1024
	if _, err := Run(context.Background(), o, trainSet, testSet); !errors.Is(err, ErrCacheTooLarge) {
		t.Errorf("cache limit: %v, want ErrCacheTooLarge", err)
	}
}
