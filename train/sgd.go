package train

import (
	"fmt"

	"github.com/bitrun/bitrun/model"
	"github.com/bitrun/bitrun/nn"
)

// SGD is stochastic gradient descent with momentum and optional weight decay:
//
//	v ← momentum·v + g + weightDecay·w   (decay only where Decay(name))
//	w ← w − lr·v
//
// (the PyTorch/TF momentum form, with weight decay as an L2 term in the
// gradient). Its state is Velocity, keyed by parameter name; save and restore
// it to resume exactly. The zero value has no momentum and no decay.
type SGD struct {
	Momentum    float64
	WeightDecay float64
	// Decay selects the parameters that get weight decay; nil means conv and
	// head kernels (not GroupNorm parameters or the head bias).
	Decay func(name string) bool
	// Velocity holds a momentum buffer per updated parameter, created on the
	// first Step.
	Velocity model.Params
}

// DefaultSGD is the BiT setting: momentum 0.9, no weight decay (the upstream
// from-scratch recipe adds 1e-4).
func DefaultSGD() *SGD { return &SGD{Momentum: 0.9} }

// DecayKernels is the default Decay: conv kernels and the head kernel.
func DecayKernels(name string) bool {
	return name == model.HeadKernel || (len(name) > 7 && name[len(name)-7:] == "/kernel")
}

// Step updates params in place from grads (only the names in grads) with
// learning rate lr. Deterministic: each element is updated independently.
func (o *SGD) Step(params, grads model.Params, lr float64) error {
	names := grads.Names()
	var parts []sgdPart
	for _, name := range names {
		w, g := params[name], grads[name]
		if w == nil || !nn.SameShape(w.Shape, g.Shape) {
			return fmt.Errorf("train: sgd: gradient %s %v does not match parameter %v", name, g.Shape, w)
		}
		v, mu, wd, err := o.state(name, w)
		if err != nil {
			return err
		}
		lrf := float32(lr)
		for lo := 0; lo < len(w.Data); lo += sgdChunk {
			hi := min(len(w.Data), lo+sgdChunk)
			parts = append(parts, sgdPart{w.Data[lo:hi], g.Data[lo:hi], v.Data[lo:hi], mu, lrf, wd})
		}
	}
	nn.ParallelFor(len(parts), func(i int) { parts[i].update() })
	return nil
}

// state returns the momentum buffer of the named parameter w (made on
// first use), the momentum and the weight decay that apply to it.
func (o *SGD) state(name string, w *nn.Tensor) (v *nn.Tensor, mu, wd float32, err error) {
	if o.Velocity == nil {
		o.Velocity = model.Params{}
	}
	v = o.Velocity[name]
	if v == nil {
		v = nn.New(w.Shape...)
		o.Velocity[name] = v
	} else if !nn.SameShape(v.Shape, w.Shape) {
		return nil, 0, 0, fmt.Errorf("train: sgd: momentum buffer %s %v does not match parameter %v", name, v.Shape, w.Shape)
	}
	decay := o.Decay
	if decay == nil {
		decay = DecayKernels
	}
	if o.WeightDecay != 0 && decay(name) {
		wd = float32(o.WeightDecay)
	}
	return v, float32(o.Momentum), wd, nil
}

// sgdChunk is the number of elements one core updates at a time.
const sgdChunk = 1 << 15

// sgdPart is a slice of one parameter with its gradient and momentum.
type sgdPart struct {
	w, g, v    []float32
	mu, lr, wd float32
}

func (p sgdPart) update() {
	w, g, v := p.w, p.g[:len(p.w)], p.v[:len(p.w)]
	for i := range w {
		v[i] = p.mu*v[i] + g[i] + p.wd*w[i]
		w[i] -= p.lr * v[i]
	}
}
