package model

import (
	"hash/fnv"
	"math"
	"math/rand/v2"

	"github.com/bitrun/bitrun/nn"
)

// Init returns freshly initialised weights for cfg: He-normal conv kernels
// (standard deviation sqrt(2/fan_in), fan_in = kh*kw*in), GN gamma 1 / beta 0,
// zero head. Deterministic for a seed: every tensor draws from its own PCG
// stream keyed by the seed and the tensor's name, so the result does not
// depend on scheduling and a tensor's values do not depend on the others.
//
// cfg must pass Validate; for an invalid cfg Init returns nil. The result
// takes 4 bytes per parameter (3.7 GB for R152x4).
func Init(cfg Config, seed int64) Params {
	if cfg.Validate() != nil {
		return nil
	}
	specs := cfg.Spec()
	tensors := make([]*nn.Tensor, len(specs))
	nn.ParallelFor(len(specs), func(i int) {
		s := specs[i]
		t := nn.New(s.Shape...)
		switch s.Kind {
		case KindConv:
			fanIn := s.Shape[0] * s.Shape[1] * s.Shape[2]
			std := math.Sqrt(2 / float64(fanIn))
			rng := rand.New(rand.NewPCG(uint64(seed), nameStream(s.Name)))
			for j := range t.Data {
				t.Data[j] = float32(rng.NormFloat64() * std)
			}
		case KindGamma:
			for j := range t.Data {
				t.Data[j] = 1
			}
		}
		tensors[i] = t
	})
	params := make(Params, len(specs))
	for i, s := range specs {
		params[s.Name] = tensors[i]
	}
	return params
}

// nameStream is the PCG stream selector for a parameter name.
func nameStream(name string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	return h.Sum64()
}

// ReplaceHead returns a copy of params (trunk tensors shared) whose head has
// the given class count, zero-initialised, for transfer. The head's input
// width comes from the pre-head GroupNorm (or the old head kernel); when
// params has neither, the copy has no head and Check reports it missing. A
// class count below 1 gives an empty head that New rejects.
func ReplaceHead(params Params, classes int) Params {
	out := make(Params, len(params)+2)
	for k, v := range params {
		if k != HeadKernel && k != HeadBias {
			out[k] = v
		}
	}
	width := 0
	if g := params[HeadGamma]; g != nil && len(g.Shape) == 1 {
		width = g.Shape[0]
	} else if k := params[HeadKernel]; k != nil && len(k.Shape) == 4 {
		width = k.Shape[2]
	}
	if width <= 0 {
		return out
	}
	classes = max(classes, 0)
	out[HeadKernel] = nn.New(1, 1, width, classes)
	out[HeadBias] = nn.New(classes)
	return out
}
