package model

import (
	"maps"
	"slices"

	"github.com/bitrun/bitrun/nn"
)

// Params holds a network's weights keyed by the official checkpoint names, in
// the checkpoint layout: conv kernels HWIO, GroupNorm parameters (C,), head
// kernel (1,1,C,classes) and head bias (classes,).
type Params map[string]*nn.Tensor

// Names returns the keys in sorted order.
func (p Params) Names() []string {
	names := slices.Sorted(maps.Keys(p))
	return names
}

// Clone deep-copies every tensor.
func (p Params) Clone() Params {
	out := make(Params, len(p))
	for k, v := range p {
		out[k] = v.Clone()
	}
	return out
}

// Count is the number of scalar parameters.
func (p Params) Count() int64 {
	var n int64
	for _, v := range p {
		n += int64(v.Len())
	}
	return n
}
