package nn

import (
	"errors"
	"fmt"
	"math"
)

// ErrLabel is wrapped by the error for a class label outside [0, classes).
var ErrLabel = errors.New("nn: label out of range")

// SoftmaxCrossEntropy is the cross-entropy between softmax(logits) and soft
// targets (N×K, each row a distribution: one-hot for hard labels, a mix of
// two one-hots for MixUp). It returns the SUM over the batch of
// -Σ_k t_k log p_k and, when grad is non-nil, writes
// grad = scale·(p·Σ_k t_k − t), the gradient of scale times that sum. Pass
// scale = 1/(logical batch size) for a mean loss accumulated over micro-batches.
func SoftmaxCrossEntropy(logits *Tensor, targets []float32, grad *Tensor, scale float32) float64 {
	n, k := logits.Shape[0], logits.Shape[1]
	if len(logits.Shape) != 2 || len(targets) != n*k || (grad != nil && grad.Len() != n*k) {
		panic(fmt.Sprintf("nn: SoftmaxCrossEntropy: logits %v, %d targets, grad %v", logits.Shape, len(targets), grad))
	}
	var total float64
	for i := 0; i < n; i++ {
		z := logits.Data[i*k : (i+1)*k]
		t := targets[i*k : (i+1)*k]
		lse := logSumExp(z)
		var st float64
		for j, v := range z {
			if t[j] != 0 {
				total -= float64(t[j]) * (float64(v) - lse)
			}
			st += float64(t[j])
		}
		if grad != nil {
			g := grad.Data[i*k : (i+1)*k]
			for j, v := range z {
				p := math.Exp(float64(v) - lse)
				g[j] = scale * float32(p*st-float64(t[j]))
			}
		}
	}
	return total
}

// SoftmaxCrossEntropyLabels is SoftmaxCrossEntropy with hard labels. A label
// outside [0, K) returns an error wrapping ErrLabel.
func SoftmaxCrossEntropyLabels(logits *Tensor, labels []int, grad *Tensor, scale float32) (float64, error) {
	n, k := logits.Shape[0], logits.Shape[1]
	if len(logits.Shape) != 2 || len(labels) != n || (grad != nil && grad.Len() != n*k) {
		panic(fmt.Sprintf("nn: SoftmaxCrossEntropyLabels: logits %v, %d labels, grad %v", logits.Shape, len(labels), grad))
	}
	for i, l := range labels {
		if l < 0 || l >= k {
			return 0, fmt.Errorf("%w: example %d has label %d, want [0, %d)", ErrLabel, i, l, k)
		}
	}
	var total float64
	for i, l := range labels {
		z := logits.Data[i*k : (i+1)*k]
		lse := logSumExp(z)
		total -= float64(z[l]) - lse
		if grad != nil {
			g := grad.Data[i*k : (i+1)*k]
			for j, v := range z {
				g[j] = scale * float32(math.Exp(float64(v)-lse))
			}
			g[l] -= scale
		}
	}
	return total, nil
}

func logSumExp(z []float32) float64 {
	m := math.Inf(-1)
	for _, v := range z {
		m = math.Max(m, float64(v))
	}
	var s float64
	for _, v := range z {
		s += math.Exp(float64(v) - m)
	}
	return m + math.Log(s)
}

// Argmax returns the index of the largest value of each row of x [N,K].
func Argmax(x *Tensor, dst []int) []int {
	n, k := x.Shape[0], x.Shape[1]
	dst = dst[:0]
	for i := 0; i < n; i++ {
		row := x.Data[i*k : (i+1)*k]
		best := 0
		for j, v := range row {
			if v > row[best] {
				best = j
			}
		}
		dst = append(dst, best)
	}
	return dst
}
