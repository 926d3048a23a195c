package train

import (
	"fmt"
	"math"
	"math/rand/v2"
	goruntime "runtime"
	"slices"
	"testing"

	"github.com/bitrun/bitrun/internal/gradcheck"
	"github.com/bitrun/bitrun/internal/testmodel"
	"github.com/bitrun/bitrun/model"
	"github.com/bitrun/bitrun/nn"
)

// randomParams is testmodel.Random's default spread: He-scaled kernels,
// gamma around 1, non-zero beta, head and bias.
func randomParams(cfg model.Config, seed uint64) model.Params {
	return testmodel.Random(cfg, seed, testmodel.Spread{})
}

func randomInput(seed uint64, shape ...int) *nn.Tensor {
	rng := rand.New(rand.NewPCG(seed, 2))
	x := nn.New(shape...)
	for i := range x.Data {
		x.Data[i] = float32(rng.Float64()*2 - 1)
	}
	return x
}

// gradsOf returns a copy of the gradients of one ForwardBackward of a Net
// of cfg, params and tr on x and targets with loss scale scale.
func gradsOf(t testing.TB, cfg model.Config, params model.Params, tr Trainable, x *nn.Tensor, targets []float32, scale float32) model.Params {
	t.Helper()
	net, err := NewNet(cfg, params, tr)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := net.ForwardBackward(x, targets, scale); err != nil {
		t.Fatal(err)
	}
	return net.Grads().Clone()
}

func tinyConfig(t testing.TB, classes int) model.Config {
	cfg, err := model.Arch("tiny", classes)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestForwardMatchesModel: the training forward computes what the inference
// forward (model.Model.Forward) computes.
func TestForwardMatchesModel(t *testing.T) {
	cfg := tinyConfig(t, 7)
	params := randomParams(cfg, 1)
	x := randomInput(2, 3, 3, 40, 36)
	m, err := model.New(cfg, params)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := m.Forward(x)
	net, err := NewNet(cfg, params, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := net.Forward(x)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Shape, want.Shape) {
		t.Fatalf("logits %v, want %v", got.Shape, want.Shape)
	}
	var scale float64
	for _, v := range want.Data {
		scale = math.Max(scale, math.Abs(float64(v)))
	}
	for i := range want.Data {
		if d := math.Abs(float64(got.Data[i] - want.Data[i])); d > 1e-4*scale {
			t.Fatalf("logit %d: train forward %g, model.Forward %g", i, got.Data[i], want.Data[i])
		}
	}
}

// TestNetGradCheck checks the gradient of every named parameter of a whole
// tiny BiT network (32×32 input: stride-2 convs in blocks 2-4, the root pad +
// max pool, projections, non-zero head) against central differences of the
// float64 reference forward. Coordinates are sampled per tensor.
func TestNetGradCheck(t *testing.T) {
	cfg := tinyConfig(t, 5)
	params := randomParams(cfg, 3)
	x := randomInput(4, 2, 3, 32, 32)
	const classes = 5
	targets := make([]float32, 2*classes)
	targets[1], targets[3] = 0.7, 0.3 // MixUp-style soft target
	targets[classes+4] = 1
	grads := gradsOf(t, cfg, params, nil, x, targets, 1)

	p64 := gradcheck.FromParams(params)
	x64 := gradcheck.From(x)
	t64 := make([]float64, len(targets))
	for i, v := range targets {
		t64[i] = float64(v)
	}
	loss := func() float64 { return gradcheck.SoftCE(gradcheck.Forward(cfg, p64, x64), t64) }
	samples := 6
	if testing.Short() {
		samples = 2
	}
	rng := rand.New(rand.NewPCG(9, 9))
	var allA []float32
	var allN []float64
	for _, s := range cfg.Spec() {
		g := grads[s.Name]
		if g == nil {
			t.Fatalf("no gradient for %s", s.Name)
		}
		v := p64[s.Name].Data
		var a []float32
		var num []float64
		for k := 0; k < samples; k++ {
			i := rng.IntN(len(v))
			a = append(a, g.Data[i])
			num = append(num, gradcheck.Central(loss, &v[i], 1e-6))
		}
		e := gradcheck.RelErr(a, num)
		if e >= 1e-3 {
			t.Errorf("%s: relative error %.3g (analytic %v, numeric %v)", s.Name, e, a, num)
		}
		allA, allN = append(allA, a...), append(allN, num...)
	}
	if e := gradcheck.RelErr(allA, allN); e >= 1e-3 {
		t.Errorf("whole network: relative error %.3g", e)
	} else {
		t.Logf("whole network: relative error %.3g over %d sampled coordinates", e, len(allN))
	}
}

// TestAccumulateAndFreeze: two micro-batches with scale 1/4 give the gradient
// of one batch of 4; frozen presets give the same head gradients and nothing
// for frozen names.
func TestAccumulateAndFreeze(t *testing.T) {
	cfg := tinyConfig(t, 4)
	params := randomParams(cfg, 5)
	x := randomInput(6, 4, 3, 32, 32)
	labels := []int{0, 3, 1, 2}
	targets := make([]float32, 4*4)
	if err := OneHot(labels, 4, targets); err != nil {
		t.Fatal(err)
	}
	full, _ := NewNet(cfg, params, nil)
	lossFull, _, err := full.ForwardBackward(x, targets, 0.25)
	if err != nil {
		t.Fatal(err)
	}
	gFull := full.Grads().Clone()

	split, _ := NewNet(cfg, params, nil)
	var lossSplit float64
	for h := 0; h < 2; h++ {
		xs := nn.FromData(x.Data[h*2*3*32*32:(h+1)*2*3*32*32], 2, 3, 32, 32)
		l, _, err := split.ForwardBackward(xs, targets[h*8:(h+1)*8], 0.25)
		if err != nil {
			t.Fatal(err)
		}
		lossSplit += l
	}
	if math.Abs(lossFull-lossSplit) > 1e-5*lossFull {
		t.Fatalf("loss: batch %g, split %g", lossFull, lossSplit)
	}
	for name, g := range split.Grads() {
		if e := gradcheck.RelErr(g.Data, gradcheck.From(gFull[name]).Data); e > 1e-4 {
			t.Errorf("%s: split vs full relative error %.3g", name, e)
		}
	}

	for _, preset := range []string{PresetHead, PresetHeadGN} {
		tr, err := Preset(preset)
		if err != nil {
			t.Fatal(err)
		}
		g := gradsOf(t, cfg, params, tr, x, targets, 0.25)
		want := 2
		if preset == PresetHeadGN {
			want = 4
		}
		if len(g) != want {
			t.Fatalf("%s: %d gradients (%v), want %d", preset, len(g), g.Names(), want)
		}
		for name, v := range g {
			if e := gradcheck.RelErr(v.Data, gradcheck.From(gFull[name]).Data); e > 1e-5 {
				t.Errorf("%s: %s differs from the all-trainable gradient (relative error %.3g)", preset, name, e)
			}
		}
	}
	if _, err := Preset("trunk"); err == nil {
		t.Error("unknown preset accepted")
	}
}

func TestNetBadInput(t *testing.T) {
	cfg := tinyConfig(t, 3)
	net, err := NewNet(cfg, randomParams(cfg, 1), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := net.Forward(nn.New(1, 1, 32, 32)); err == nil {
		t.Error("1-channel input accepted")
	}
	if _, _, err := net.ForwardBackward(nn.New(2, 3, 32, 32), make([]float32, 3), 1); err == nil {
		t.Error("short targets accepted")
	}
	if err := OneHot([]int{3}, 3, make([]float32, 3)); err == nil {
		t.Error("label 3 of 3 classes accepted")
	}
	bad := randomParams(cfg, 1)
	delete(bad, model.HeadBias)
	if _, err := NewNet(cfg, bad, nil); err == nil {
		t.Error("missing head bias accepted")
	}
}

// TestSteadyStateMemory: after the first step the arena does not grow.
func TestSteadyStateMemory(t *testing.T) {
	cfg := tinyConfig(t, 3)
	net, _ := NewNet(cfg, randomParams(cfg, 1), nil)
	x := randomInput(1, 4, 3, 32, 32)
	targets := make([]float32, 12)
	_ = OneHot([]int{0, 1, 2, 0}, 3, targets)
	step := func() {
		if _, _, err := net.ForwardBackward(x, targets, 0.25); err != nil {
			t.Fatal(err)
		}
		net.Grads()
		net.ZeroGrad()
	}
	// AllocsPerRun runs at GOMAXPROCS 1, which changes the batch-parallel
	// split: warm up under it too.
	testing.AllocsPerRun(1, step)
	held := net.ArenaBytes()
	allocs := testing.AllocsPerRun(3, step)
	if net.ArenaBytes() != held {
		t.Errorf("arena grew from %d to %d bytes", held, net.ArenaBytes())
	}
	t.Logf("arena %d KiB; %.0f small allocations per step (goroutine fan-out, no tensors)", held>>10, allocs)
}

// TestBatchParallel: splitting a batch over replicas (one per core) gives
// the loss, logits and gradients of the single-replica step, the gathered
// gradients survive a second micro-batch, and nothing of an earlier step is
// left after ZeroGrad.
func TestBatchParallel(t *testing.T) {
	cfg := tinyConfig(t, 3)
	params := randomParams(cfg, 4)
	x := randomInput(5, 5, 3, 32, 32) // 5 images: unequal shares
	targets := make([]float32, 15)
	_ = OneHot([]int{0, 1, 2, 0, 1}, 3, targets)
	run := func(procs int, warm bool) (float64, []float32, model.Params) {
		defer goruntime.GOMAXPROCS(goruntime.GOMAXPROCS(procs))
		net, err := NewNet(cfg, params, nil)
		if err != nil {
			t.Fatal(err)
		}
		// A finished step first: ZeroGrad must leave nothing of it behind
		// (the accumulators are overwritten, not cleared).
		if warm {
			if _, _, err := net.ForwardBackward(randomInput(9, 5, 3, 32, 32), targets, 0.3); err != nil {
				t.Fatal(err)
			}
			net.Grads()
			net.ZeroGrad()
		}
		var loss float64
		var logits []float32
		for range 2 { // two micro-batches accumulate
			l, lg, err := net.ForwardBackward(x, targets, 0.1)
			if err != nil {
				t.Fatal(err)
			}
			loss, logits = l, append([]float32(nil), lg.Data...)
		}
		if procs > 1 && len(net.replicas) == 0 {
			t.Fatalf("GOMAXPROCS %d: no replicas made", procs)
		}
		g := model.Params{}
		for k, v := range net.Grads() {
			g[k] = v.Clone()
		}
		return loss, logits, g
	}
	loss1, logits1, g1 := run(1, false)
	for _, procs := range []int{1, 3} {
		loss2, logits2, g2 := run(procs, true)
		if math.Abs(loss1-loss2) > 1e-5*math.Abs(loss1) {
			t.Errorf("GOMAXPROCS %d after a step: loss %v, fresh whole batch %v", procs, loss2, loss1)
		}
		for i := range logits1 {
			if math.Abs(float64(logits1[i]-logits2[i])) > 1e-4 {
				t.Fatalf("GOMAXPROCS %d after a step: logit %d = %v, fresh whole batch %v", procs, i, logits2[i], logits1[i])
			}
		}
		for k, want := range g1 {
			got := g2[k]
			for i := range want.Data {
				if d := math.Abs(float64(got.Data[i] - want.Data[i])); d > 1e-4*(1+math.Abs(float64(want.Data[i]))) {
					t.Fatalf("GOMAXPROCS %d after a step: %s[%d] = %v, fresh whole batch %v", procs, k, i, got.Data[i], want.Data[i])
				}
			}
		}
	}
}

// TestPartialFreeze: training only some parameters deep in the network gives
// them the gradients a fully trainable net gives them (the backward stops
// where nothing before it trains, at every possible point in a unit).
func TestPartialFreeze(t *testing.T) {
	cfg := tinyConfig(t, 3)
	params := randomParams(cfg, 6)
	x := randomInput(7, 4, 3, 32, 32)
	targets := make([]float32, 12)
	_ = OneHot([]int{0, 1, 2, 0}, 3, targets)
	grads := func(tr Trainable) model.Params { return gradsOf(t, cfg, params, tr, x, targets, 0.25) }
	all := grads(nil)
	last := cfg.Units[3] - 1
	for _, first := range []string{
		model.ConvKey(3, last, "c"), model.GammaKey(3, last, "c"), model.ConvKey(3, last, "b"),
		model.GammaKey(3, last, "b"), model.ConvKey(3, last, "a"), model.GammaKey(3, 0, "a"),
	} {
		on := map[string]bool{first: true, model.HeadKernel: true, model.HeadBias: true}
		got := grads(func(name string) bool { return on[name] })
		for name := range on {
			want := all[name]
			for i := range want.Data {
				if d := math.Abs(float64(got[name].Data[i] - want.Data[i])); d > 1e-5*(1+math.Abs(float64(want.Data[i]))) {
					t.Fatalf("training from %s: %s[%d] = %v, want %v", first, name, i, got[name].Data[i], want.Data[i])
				}
			}
		}
	}
}

// Net.Step gives to the bit what SGD.Step over Net.Grads gives, over
// steps with one, two, three or four replicas (beyond two they are gathered
// first), micro-batches, weight decay and frozen presets; and so do the
// momentum buffers.
func TestNetStep(t *testing.T) {
	cfg := tinyConfig(t, 4)
	x := randomInput(6, 4, 3, 32, 32)
	targets := make([]float32, 4*4)
	if err := OneHot([]int{0, 3, 1, 2}, 4, targets); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		preset string
		procs  int
		micro  int
	}{{PresetAll, 2, 1}, {PresetAll, 1, 1}, {PresetAll, 2, 2}, {PresetAll, 3, 1}, {PresetAll, 4, 1}, {PresetHeadGN, 2, 1}} {
		t.Run(fmt.Sprint(tc), func(t *testing.T) {
			defer goruntime.GOMAXPROCS(goruntime.GOMAXPROCS(tc.procs))
			tr, err := Preset(tc.preset)
			if err != nil {
				t.Fatal(err)
			}
			pa, pb := randomParams(cfg, 5), randomParams(cfg, 5)
			na, _ := NewNet(cfg, pa, tr)
			nb, _ := NewNet(cfg, pb, tr)
			oa := &SGD{Momentum: 0.9, WeightDecay: 1e-3}
			ob := &SGD{Momentum: 0.9, WeightDecay: 1e-3}
			per := 4 / tc.micro
			for step := 0; step < 3; step++ {
				for _, n := range []*Net{na, nb} {
					for m := 0; m < tc.micro; m++ {
						xm := nn.FromData(x.Data[m*per*3*32*32:(m+1)*per*3*32*32], per, 3, 32, 32)
						if _, _, err := n.ForwardBackward(xm, targets[m*per*4:(m+1)*per*4], 0.25); err != nil {
							t.Fatal(err)
						}
					}
				}
				if err := oa.Step(pa, na.Grads(), 0.1); err != nil {
					t.Fatal(err)
				}
				if err := nb.Step(ob, 0.1); err != nil {
					t.Fatal(err)
				}
				na.ZeroGrad()
				nb.ZeroGrad()
			}
			for name, w := range pa {
				if !slices.Equal(w.Data, pb[name].Data) {
					t.Errorf("%s: Net.Step and SGD.Step(Grads) differ", name)
				}
			}
			for name, v := range oa.Velocity {
				if !slices.Equal(v.Data, ob.Velocity[name].Data) {
					t.Errorf("velocity %s differs", name)
				}
			}
			if len(oa.Velocity) != len(ob.Velocity) {
				t.Errorf("%d velocities, want %d", len(ob.Velocity), len(oa.Velocity))
			}
		})
	}
}

// The packed kernels are reused only while they match the parameters:
// Step repacks exactly the kernels it updates (a frozen one keeps its
// packing across steps), and ZeroGrad after any other change of the
// parameters makes the next forward pack every kernel again.
func TestNetKeepsPackedKernels(t *testing.T) {
	cfg := tinyConfig(t, 4)
	x, targets := twoExamples(t)
	tr, err := Preset(PresetHeadGN)
	if err != nil {
		t.Fatal(err)
	}
	params := randomParams(cfg, 5)
	n, _ := NewNet(cfg, params, tr)
	run := func() {
		t.Helper()
		if _, _, err := n.ForwardBackward(x, targets, 0.5); err != nil {
			t.Fatal(err)
		}
	}
	run()
	key := model.ConvKey(0, 0, "b")
	k0 := n.kern[key]
	if err := n.Step(DefaultSGD(), 0.1); err != nil {
		t.Fatal(err)
	}
	n.ZeroGrad()
	run()
	if n.kern[key] != k0 {
		t.Errorf("frozen kernel %s packed again after Step", key)
	}
	// Another optimiser changes a kernel: the next forward must see it.
	params[key].Data[0] += 1
	n.ZeroGrad()
	run()
	if n.kern[key] == k0 {
		t.Fatalf("kernel %s not packed again after the parameters changed", key)
	}
	fresh, _ := NewNet(cfg, params, tr)
	fresh.prepare()
	if !slices.Equal(n.kern[key].WS.Scale, fresh.kern[key].WS.Scale) || !slices.Equal(n.kern[key].WS.Shift, fresh.kern[key].WS.Shift) {
		t.Errorf("kernel %s: standardisation differs from a fresh Net's", key)
	}
}

// Forwards after the updates a Net cannot see through Step's fused path
// match a fresh Net over the same parameters, to the bit: Step's fallback
// (no gradients since ZeroGrad, so SGD.Step over Grads moves every kernel
// by momentum and weight decay), and a change made after Step followed by
// Invalidate (found in review: both forwards used the kernels packed
// before the change).
func TestNetForwardSeesEveryUpdate(t *testing.T) {
	cfg := tinyConfig(t, 4)
	x, targets := twoExamples(t)
	params := randomParams(cfg, 5)
	n, _ := NewNet(cfg, params, nil)
	opt := &SGD{Momentum: 0.9, WeightDecay: 1e-2}
	matchesFresh := func(what string) {
		t.Helper()
		got, err := n.Forward(x)
		if err != nil {
			t.Fatal(err)
		}
		fresh, _ := NewNet(cfg, params, nil)
		want, _ := fresh.Forward(x)
		if !slices.Equal(got.Data, want.Data) {
			t.Errorf("%s: logits %v, a fresh Net %v", what, got.Data, want.Data)
		}
	}
	if _, _, err := n.ForwardBackward(x, targets, 0.5); err != nil {
		t.Fatal(err)
	}
	if err := n.Step(opt, 0.1); err != nil {
		t.Fatal(err)
	}
	n.ZeroGrad()
	matchesFresh("after Step")
	if err := n.Step(opt, 0.1); err != nil { // nothing accumulated: the fallback
		t.Fatal(err)
	}
	matchesFresh("after Step's fallback")
	for _, w := range params {
		w.Data[0] *= 1.5
	}
	n.Invalidate()
	matchesFresh("after a change and Invalidate")
}

// twoExamples is a batch of two random 32x32 images labelled 0 and 3 of 4
// classes, and its one-hot targets.
func twoExamples(t *testing.T) (*nn.Tensor, []float32) {
	t.Helper()
	targets := make([]float32, 2*4)
	if err := OneHot([]int{0, 3}, 4, targets); err != nil {
		t.Fatal(err)
	}
	return randomInput(6, 2, 3, 32, 32), targets
}
