package nn

import (
	"fmt"
	"math"
)

// Epsilons fixed by the BiT reference numerics.
const (
	WSEpsilon = 1e-10 // inside the sqrt of weight standardisation
	GNEpsilon = 1e-5  // GroupNorm
)

// ConvOutSize is the spatial output size of a convolution or pooling window.
func ConvOutSize(in, k, stride, pad int) int { return (in+2*pad-k)/stride + 1 }

// Conv2D convolves x [N,C,H,W] with w [O,C,KH,KW] (no bias).
func Conv2D(x, w *Tensor, stride, pad int) *Tensor {
	n, c, h, wd := dims4(x)
	o, ci, kh, kw := dims4(w)
	if ci != c {
		panic(fmt.Sprintf("nn: Conv2D: input has %d channels, kernel expects %d", c, ci))
	}
	oh, ow := ConvOutSize(h, kh, stride, pad), ConvOutSize(wd, kw, stride, pad)
	out := New(n, o, oh, ow)
	g := Backend()
	kdim := c * kh * kw
	pix := oh * ow
	ParallelFor(n, func(b int) {
		xb := x.Data[b*c*h*wd : (b+1)*c*h*wd]
		ob := out.Data[b*o*pix : (b+1)*o*pix]
		if kh == 1 && kw == 1 && stride == 1 && pad == 0 {
			g.Sgemm(false, false, o, pix, c, w.Data, c, xb, pix, 0, ob, pix)
			return
		}
		col := make([]float32, kdim*pix)
		Im2Col(xb, c, h, wd, kh, kw, stride, pad, oh, ow, col)
		g.Sgemm(false, false, o, pix, kdim, w.Data, kdim, col, pix, 0, ob, pix)
	})
	return out
}

// Im2Col lays out the patches of one image x [C,H,W] as col [C*KH*KW, OH*OW].
func Im2Col(x []float32, c, h, w, kh, kw, stride, pad, oh, ow int, col []float32) {
	pix := oh * ow
	for ch := 0; ch < c; ch++ {
		for ky := 0; ky < kh; ky++ {
			for kx := 0; kx < kw; kx++ {
				row := col[((ch*kh+ky)*kw+kx)*pix:][:pix]
				for y := 0; y < oh; y++ {
					iy := y*stride - pad + ky
					dst := row[y*ow : (y+1)*ow]
					if iy < 0 || iy >= h {
						clear(dst)
						continue
					}
					src := x[(ch*h+iy)*w:][:w]
					for xo := 0; xo < ow; xo++ {
						ix := xo*stride - pad + kx
						if ix < 0 || ix >= w {
							dst[xo] = 0
						} else {
							dst[xo] = src[ix]
						}
					}
				}
			}
		}
	}
}

// StandardizeWeight returns (w - mean) / sqrt(var + WSEpsilon) per output channel
// of an OIHW kernel, with the biased variance over (in, kh, kw).
func StandardizeWeight(w *Tensor) *Tensor {
	o := w.Shape[0]
	per := w.Len() / o
	out := New(w.Shape...)
	ParallelFor(o, func(i int) {
		src := w.Data[i*per : (i+1)*per]
		var mean float64
		for _, v := range src {
			mean += float64(v)
		}
		mean /= float64(per)
		var variance float64
		for _, v := range src {
			d := float64(v) - mean
			variance += d * d
		}
		variance /= float64(per)
		inv := 1 / math.Sqrt(variance+WSEpsilon)
		dst := out.Data[i*per : (i+1)*per]
		for j, v := range src {
			dst[j] = float32((float64(v) - mean) * inv)
		}
	})
	return out
}

// GroupNorm normalises x [N,C,H,W] over groups of C/groups channels (and all
// pixels), then applies the per-channel affine gamma, beta.
func GroupNorm(x *Tensor, groups int, gamma, beta []float32) *Tensor {
	n, c, h, w := dims4(x)
	if c%groups != 0 || len(gamma) != c || len(beta) != c {
		panic(fmt.Sprintf("nn: GroupNorm: %d channels, %d groups, %d gamma, %d beta", c, groups, len(gamma), len(beta)))
	}
	out := New(x.Shape...)
	cpg := c / groups
	size := cpg * h * w
	ParallelFor(n*groups, func(ng int) {
		b, g := ng/groups, ng%groups
		off := (b*c + g*cpg) * h * w
		src := x.Data[off : off+size]
		var mean float64
		for _, v := range src {
			mean += float64(v)
		}
		mean /= float64(size)
		var variance float64
		for _, v := range src {
			d := float64(v) - mean
			variance += d * d
		}
		variance /= float64(size)
		inv := 1 / math.Sqrt(variance+GNEpsilon)
		for k := 0; k < cpg; k++ {
			ch := g*cpg + k
			scale := float32(inv) * gamma[ch]
			shift := beta[ch] - float32(mean)*scale
			s := src[k*h*w : (k+1)*h*w]
			d := out.Data[off+k*h*w : off+(k+1)*h*w]
			for j, v := range s {
				d[j] = v*scale + shift
			}
		}
	})
	return out
}

// ReLUInPlace sets negative values of x to zero and returns x.
func ReLUInPlace(x *Tensor) *Tensor {
	for i, v := range x.Data {
		if v < 0 {
			x.Data[i] = 0
		}
	}
	return x
}

// ZeroPad pads the two spatial dimensions of x [N,C,H,W] with p zeros per side.
func ZeroPad(x *Tensor, p int) *Tensor {
	n, c, h, w := dims4(x)
	oh, ow := h+2*p, w+2*p
	out := New(n, c, oh, ow)
	for nc := 0; nc < n*c; nc++ {
		for y := 0; y < h; y++ {
			copy(out.Data[(nc*oh+y+p)*ow+p:][:w], x.Data[(nc*h+y)*w:][:w])
		}
	}
	return out
}

// MaxPool applies a k×k max pool with the given stride and no padding.
func MaxPool(x *Tensor, k, stride int) *Tensor {
	n, c, h, w := dims4(x)
	oh, ow := ConvOutSize(h, k, stride, 0), ConvOutSize(w, k, stride, 0)
	out := New(n, c, oh, ow)
	ParallelFor(n*c, func(nc int) {
		src := x.Data[nc*h*w : (nc+1)*h*w]
		dst := out.Data[nc*oh*ow : (nc+1)*oh*ow]
		for y := 0; y < oh; y++ {
			for xo := 0; xo < ow; xo++ {
				m := float32(math.Inf(-1))
				for ky := 0; ky < k; ky++ {
					row := src[(y*stride+ky)*w:]
					for kx := 0; kx < k; kx++ {
						if v := row[xo*stride+kx]; v > m {
							m = v
						}
					}
				}
				dst[y*ow+xo] = m
			}
		}
	})
	return out
}

// GlobalAvgPool averages x [N,C,H,W] over H and W, giving [N,C].
func GlobalAvgPool(x *Tensor) *Tensor {
	n, c, h, w := dims4(x)
	out := New(n, c)
	hw := h * w
	for i := 0; i < n*c; i++ {
		var s float64
		for _, v := range x.Data[i*hw : (i+1)*hw] {
			s += float64(v)
		}
		out.Data[i] = float32(s / float64(hw))
	}
	return out
}

// Linear computes x [N,C] · w [C,K] + b [K], giving [N,K].
func Linear(x, w *Tensor, b []float32) *Tensor {
	n, c := x.Shape[0], x.Shape[1]
	if w.Shape[0] != c || len(b) != w.Shape[1] {
		panic(fmt.Sprintf("nn: Linear: x %v, w %v, b %d", x.Shape, w.Shape, len(b)))
	}
	k := w.Shape[1]
	out := New(n, k)
	for i := 0; i < n; i++ {
		copy(out.Data[i*k:(i+1)*k], b)
	}
	Backend().Sgemm(false, false, n, k, c, x.Data, c, w.Data, k, 1, out.Data, k)
	return out
}

// AddInPlace adds src to dst element-wise and returns dst.
func AddInPlace(dst, src *Tensor) *Tensor {
	if !SameShape(dst.Shape, src.Shape) {
		panic(fmt.Sprintf("nn: AddInPlace: %v vs %v", dst.Shape, src.Shape))
	}
	for i, v := range src.Data {
		dst.Data[i] += v
	}
	return dst
}

func dims4(t *Tensor) (int, int, int, int) {
	if len(t.Shape) != 4 {
		panic(fmt.Sprintf("nn: want a 4-D tensor, got %v", t.Shape))
	}
	return t.Shape[0], t.Shape[1], t.Shape[2], t.Shape[3]
}
