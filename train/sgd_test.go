package train

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/bitrun/bitrun/model"
	"github.com/bitrun/bitrun/nn"
)

func TestSGDStep(t *testing.T) {
	k := "resnet/block1/unit01/a/standardized_conv2d/kernel"
	g := "resnet/block1/unit01/a/group_norm/gamma"
	params := model.Params{k: nn.FromData([]float32{1, -2}, 2), g: nn.FromData([]float32{1, 1}, 2)}
	grads := model.Params{k: nn.FromData([]float32{0.5, 0.5}, 2), g: nn.FromData([]float32{1, 0}, 2)}
	o := &SGD{Momentum: 0.9, WeightDecay: 0.1}
	// step 1: v = g + wd*w (kernel only), w -= lr*v
	if err := o.Step(params, grads, 0.1); err != nil {
		t.Fatal(err)
	}
	wantV := []float64{0.5 + 0.1*1, 0.5 + 0.1*-2}
	wantW := []float64{1 - 0.1*wantV[0], -2 - 0.1*wantV[1]}
	// step 2: v = 0.9 v + g + wd*w
	if err := o.Step(params, grads, 0.1); err != nil {
		t.Fatal(err)
	}
	for i := range wantV {
		wantV[i] = 0.9*wantV[i] + 0.5 + 0.1*wantW[i]
		wantW[i] -= 0.1 * wantV[i]
		if d := math.Abs(float64(params[k].Data[i]) - wantW[i]); d > 1e-6 {
			t.Errorf("kernel[%d] = %g, want %g", i, params[k].Data[i], wantW[i])
		}
	}
	// GroupNorm gamma: no weight decay; v = 1 then 1.9.
	if got := params[g].Data[0]; math.Abs(float64(got)-(1-0.1-0.19)) > 1e-6 {
		t.Errorf("gamma = %g, want %g (no decay on GN)", got, 1-0.1-0.19)
	}
	if params[g].Data[1] != 1 {
		t.Errorf("gamma with zero gradient moved to %g", params[g].Data[1])
	}
	if err := o.Step(params, model.Params{k: nn.New(3)}, 0.1); err == nil {
		t.Error("mis-shaped gradient accepted")
	}
}

func TestSchedules(t *testing.T) {
	s, err := UpstreamSchedule(0.1, 900, 50)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		step int
		want float64
	}{
		{0, 0}, {25, 0.05}, {50, 0.1}, {299, 0.1}, {300, 0.01}, {599, 0.01}, {600, 0.001}, {800, 0.0001}, {899, 0.0001},
	}
	for _, c := range cases {
		if got := s(c.step); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("lr(%d) = %g, want %g", c.step, got, c.want)
		}
	}
	// The HyperRule shape: warmup 100, x0.1 at 200, 300, 400.
	h := StepSchedule(0.003, 100, []int{200, 300, 400}, 0.1)
	if got := h(150); got != 0.003 {
		t.Errorf("hyperrule lr(150) = %g", got)
	}
	if got := h(450); math.Abs(got-3e-6) > 1e-15 {
		t.Errorf("hyperrule lr(450) = %g, want 3e-6", got)
	}
	if UpstreamLR(512) != 0.06 {
		t.Errorf("UpstreamLR(512) = %g, want 0.06", UpstreamLR(512))
	}
	if _, err := UpstreamSchedule(0.1, 10, 10); err == nil {
		t.Error("warmup as long as the schedule accepted")
	}
}

func TestBetaAndMixUp(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, alpha := range []float64{0.1, 0.2, 2} {
		var sum, sq float64
		const n = 20000
		for i := 0; i < n; i++ {
			v := Beta(rng, alpha)
			if v < 0 || v > 1 {
				t.Fatalf("Beta(%g) = %g", alpha, v)
			}
			sum += v
			sq += v * v
		}
		mean, variance := sum/n, sq/n-(sum/n)*(sum/n)
		wantVar := 1 / (4 * (2*alpha + 1)) // Beta(a,a): mean 1/2, var 1/(4(2a+1))
		if math.Abs(mean-0.5) > 0.02 || math.Abs(variance-wantVar) > 0.1*wantVar {
			t.Errorf("Beta(%g): mean %.3f var %.4f, want 0.5 and %.4f", alpha, mean, variance, wantVar)
		}
	}
	if Beta(rng, 0) != 1 {
		t.Error("alpha 0 should disable mixing")
	}
	x := nn.FromData([]float32{1, 1, 3, 3}, 2, 1, 1, 2)
	targets := make([]float32, 4)
	if err := MixUp(x, []int{0, 1}, []int{1, 0}, 2, 0.75, targets, nil); err != nil {
		t.Fatal(err)
	}
	wantX := []float32{1.5, 1.5, 2.5, 2.5}
	wantT := []float32{0.75, 0.25, 0.25, 0.75}
	for i := range wantX {
		if math.Abs(float64(x.Data[i]-wantX[i])) > 1e-6 || math.Abs(float64(targets[i]-wantT[i])) > 1e-6 {
			t.Fatalf("mixed x %v targets %v, want %v %v", x.Data, targets, wantX, wantT)
		}
	}
	if err := MixUp(x, []int{0, 1}, []int{2, 0}, 2, 0.5, targets, nil); err == nil {
		t.Error("partner out of range accepted")
	}
}

// TestDominantLabels: a mixed example is scored against the label with the
// larger MixUp weight (its own for lambda >= 0.5, its partner's below).
func TestDominantLabels(t *testing.T) {
	labels, partner := []int{0, 1, 2}, []int{2, 0, 1}
	for _, c := range []struct {
		lam  float32
		want []int
	}{{1, []int{0, 1, 2}}, {0.5, []int{0, 1, 2}}, {0.49, []int{2, 0, 1}}, {0, []int{2, 0, 1}}} {
		got := DominantLabels(labels, partner, c.lam, make([]int, 3))
		if !slices.Equal(got, c.want) {
			t.Errorf("lambda %g: %v, want %v", c.lam, got, c.want)
		}
	}
}
