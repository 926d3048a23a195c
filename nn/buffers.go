package nn

import (
	"math/bits"
	"sync"
)

// Scratch float32 buffers for the kernels (im2col matrices, grouped GEMM
// operands), pooled by power-of-two size class so that a forward pass reuses
// the same memory layer after layer instead of allocating per call.
var floatPools [48]sync.Pool

// getFloats returns a buffer of length n with undefined contents.
func getFloats(n int) *[]float32 {
	class := bits.Len(uint(max(n, 1) - 1))
	if p, ok := floatPools[class].Get().(*[]float32); ok {
		*p = (*p)[:n]
		return p
	}
	s := make([]float32, n, 1<<class)
	return &s
}

// putFloats returns a buffer from getFloats to its pool.
func putFloats(p *[]float32) {
	class := bits.Len(uint(cap(*p)) - 1)
	if cap(*p) != 1<<class {
		return // not one of ours
	}
	floatPools[class].Put(p)
}
