package nn_test

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/bitrun/bitrun/internal/gradcheck"
	"github.com/bitrun/bitrun/nn"
)

func TestSoftmaxCrossEntropyGrad(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	const n, k = 4, 5
	logits := randT(rng, 2, n, k)
	// MixUp-style soft targets: lambda*onehot(a) + (1-lambda)*onehot(b).
	targets := make([]float32, n*k)
	lam := float32(0.7)
	for i := 0; i < n; i++ {
		targets[i*k+i%k] += lam
		targets[i*k+(i+2)%k] += 1 - lam
	}
	grad := nn.New(n, k)
	scale := float32(0.25)
	loss := nn.SoftmaxCrossEntropy(logits, targets, grad, scale)
	l64, t64 := gradcheck.From(logits), f64(targets)
	if want := gradcheck.SoftCE(l64, t64); math.Abs(loss-want) > 1e-5*math.Abs(want) {
		t.Fatalf("loss %g, want %g", loss, want)
	}
	num := numeric(l64.Data, func() float64 { return float64(scale) * gradcheck.SoftCE(l64, t64) })
	checkGrad(t, "dlogits (soft)", grad.Data, num)

	// Hard labels agree with one-hot soft targets.
	labels := []int{0, 3, 4, 1}
	onehot := make([]float32, n*k)
	for i, l := range labels {
		onehot[i*k+l] = 1
	}
	g1, g2 := nn.New(n, k), nn.New(n, k)
	l1, err := nn.SoftmaxCrossEntropyLabels(logits, labels, g1, 1)
	if err != nil {
		t.Fatal(err)
	}
	l2 := nn.SoftmaxCrossEntropy(logits, onehot, g2, 1)
	if math.Abs(l1-l2) > 1e-9*math.Abs(l2) {
		t.Fatalf("hard-label loss %g, one-hot loss %g", l1, l2)
	}
	for i := range g1.Data {
		if math.Abs(float64(g1.Data[i]-g2.Data[i])) > 1e-6 {
			t.Fatalf("grad[%d]: hard %g, one-hot %g", i, g1.Data[i], g2.Data[i])
		}
	}
	if _, err := nn.SoftmaxCrossEntropyLabels(logits, []int{0, 5, 1, 1}, g1, 1); !errors.Is(err, nn.ErrLabel) {
		t.Fatalf("label 5 of 5 classes: err %v, want ErrLabel", err)
	}
}

func TestSoftmaxCrossEntropyStable(t *testing.T) {
	logits := nn.FromData([]float32{1000, 0, -1000, 3}, 2, 2)
	grad := nn.New(2, 2)
	loss, err := nn.SoftmaxCrossEntropyLabels(logits, []int{0, 0}, grad, 1)
	if err != nil || math.IsNaN(loss) || math.IsInf(loss, 0) {
		t.Fatalf("loss %g, err %v: want finite", loss, err)
	}
	if math.Abs(loss-1003) > 1e-3 {
		t.Fatalf("loss %g, want ~1003 (example 0 costs ~0, example 1 costs 1003)", loss)
	}
	for _, g := range grad.Data {
		if math.IsNaN(float64(g)) {
			t.Fatal("NaN gradient")
		}
	}
}

func TestArenaReuse(t *testing.T) {
	var a nn.Arena
	step := func() {
		a.Reset()
		x := a.Get(3, 4)
		m := a.Mark()
		_ = a.Zeros(100)
		a.Release(m)
		y := a.Zeros(2, 2)
		if len(x.Data) != 12 || len(y.Data) != 4 {
			t.Fatalf("sizes %d %d", len(x.Data), len(y.Data))
		}
	}
	step()
	held := a.Bytes()
	allocs := testing.AllocsPerRun(10, step)
	if allocs != 0 {
		t.Errorf("steady-state step allocates %.0f times, want 0", allocs)
	}
	if a.Bytes() != held {
		t.Errorf("arena grew from %d to %d bytes on identical steps", held, a.Bytes())
	}
}
