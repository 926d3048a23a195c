package train

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/bitrun/bitrun/nn"
)

// Beta draws from the Beta(alpha, alpha) distribution (the MixUp λ); alpha
// <= 0 returns 1 (no mixing).
func Beta(rng *rand.Rand, alpha float64) float64 {
	if alpha <= 0 {
		return 1
	}
	x, y := gamma(rng, alpha), gamma(rng, alpha)
	if x+y == 0 {
		return 0.5
	}
	return x / (x + y)
}

// gamma draws from Gamma(shape, 1) (Marsaglia and Tsang; shape < 1 by the
// boost U^(1/shape)).
func gamma(rng *rand.Rand, shape float64) float64 {
	if shape < 1 {
		u := rng.Float64()
		return gamma(rng, shape+1) * math.Pow(u, 1/shape)
	}
	d := shape - 1.0/3
	c := 1 / math.Sqrt(9*d)
	for {
		x := rng.NormFloat64()
		v := 1 + c*x
		if v <= 0 {
			continue
		}
		v = v * v * v
		u := rng.Float64()
		if u < 1-0.0331*x*x*x*x || math.Log(u) < 0.5*x*x+d*(1-v+math.Log(v)) {
			return d * v
		}
	}
}

// MixUp mixes a batch with a permutation of itself, in place:
// x[i] ← λ·x[i] + (1−λ)·x[partner[i]], and writes the matching soft targets
// λ·onehot(labels[i]) + (1−λ)·onehot(labels[partner[i]]) into targets
// (N×classes). Because cross-entropy is linear in the target, training on
// these targets is BiT's loss λ·CE(y_a) + (1−λ)·CE(y_b). scratch must hold
// x.Len() values (nil allocates).
func MixUp(x *nn.Tensor, labels, partner []int, classes int, lambda float32, targets, scratch []float32) error {
	n := x.Shape[0]
	if len(labels) != n || len(partner) != n || len(targets) != n*classes {
		return fmt.Errorf("%w: mixup: %d images, %d labels, %d partners, %d targets for %d classes", ErrShape, n, len(labels), len(partner), len(targets), classes)
	}
	if scratch == nil {
		scratch = make([]float32, x.Len())
	}
	if len(scratch) < x.Len() {
		return fmt.Errorf("%w: mixup scratch holds %d values, want %d", ErrShape, len(scratch), x.Len())
	}
	per := x.Len() / n
	orig := scratch[:x.Len()]
	copy(orig, x.Data)
	clear(targets)
	for i := 0; i < n; i++ {
		j := partner[i]
		if j < 0 || j >= n || labels[i] < 0 || labels[i] >= classes || labels[j] < 0 || labels[j] >= classes {
			return fmt.Errorf("%w: mixup: example %d: partner %d or a label out of range", ErrShape, i, j)
		}
		dst, a, b := x.Data[i*per:(i+1)*per], orig[i*per:(i+1)*per], orig[j*per:(j+1)*per]
		for k := range dst {
			dst[k] = lambda*a[k] + (1-lambda)*b[k]
		}
		targets[i*classes+labels[i]] += lambda
		targets[i*classes+labels[j]] += 1 - lambda
	}
	return nil
}

// DominantLabels writes into dst (len(labels) values) the label that carries
// the larger weight of each example mixed by MixUp with partner and lambda:
// labels[i] when lambda >= 0.5, else labels[partner[i]]. Batch accuracy on a
// mixed batch is scored against these; scoring against labels[i] counts a
// correct prediction of an image that is mostly its partner as wrong, which
// puts the accuracy near chance on every step with lambda < 0.5 (half the
// steps for a symmetric Beta). It returns dst.
func DominantLabels(labels, partner []int, lambda float32, dst []int) []int {
	for i, l := range labels {
		if lambda < 0.5 {
			l = labels[partner[i]]
		}
		dst[i] = l
	}
	return dst
}
