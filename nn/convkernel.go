package nn

import (
	"fmt"
	"sync"
)

// ConvKernel is an OIHW convolution kernel prepared for repeated use, as an
// inference model applies each of its kernels to batch after batch: the
// pure-Go GEMM packs it into panels once, on first use, instead of on every
// call. Safe for concurrent use; W must not change after the first call.
type ConvKernel struct {
	W *Tensor

	once   sync.Once
	packed *packedA
}

// NewConvKernel wraps an OIHW kernel.
func NewConvKernel(w *Tensor) *ConvKernel {
	dims4(w)
	return &ConvKernel{W: w}
}

func (k *ConvKernel) panels() *packedA {
	k.once.Do(func() {
		o, c, kh, kw := dims4(k.W)
		kdim := c * kh * kw
		p := &packedA{data: make([]float32, packedLen(o, kdim)), m: o, k: kdim}
		p.fill(false, k.W.Data, kdim)
		k.packed = p
	})
	return k.packed
}

// ConvKernelInto writes the convolution of x [N,C,H,W] with k (no bias) into
// dst [N,O,OH,OW], with the same values as Conv2D. Scratch comes from a (nil:
// pooled buffers); dst must not overlap x.
func ConvKernelInto(dst, x *Tensor, k *ConvKernel, stride, pad int, a *Arena) {
	n, o, oh, ow := convShape("ConvKernelInto", x, k.W, stride, pad)
	if !SameShape(dst.Shape, []int{n, o, oh, ow}) {
		panic(fmt.Sprintf("nn: ConvKernelInto: output %v, want [%d %d %d %d]", dst.Shape, n, o, oh, ow))
	}
	if n == 0 || o == 0 {
		return
	}
	if _, ok := Backend().(PureGo); !ok {
		conv2d(dst, x, k.W, stride, pad)
		return
	}
	_, _, kh, kw := dims4(k.W)
	convPanels(dst, x, k.panels(), kh, kw, stride, pad, false, convGroup(n, oh*ow), a)
}
