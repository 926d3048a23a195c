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

// convMinCols is the product width Conv2D aims for: images whose outputs are
// smaller than this are grouped into one GEMM (columns side by side) so that
// the packed kernel is reused across them.
const convMinCols = 256

// convGroup is the number of images (of pix output pixels each, n in all)
// laid side by side in one product.
func convGroup(n, pix int) int { return max(1, min(n, (convMinCols+pix-1)/pix)) }

// Conv2D convolves x [N,C,H,W] with w [O,C,KH,KW] (no bias). It is spread
// over all cores: across images when the batch allows it, else inside the
// GEMM and im2col of each image.
func Conv2D(x, w *Tensor, stride, pad int) *Tensor {
	n, _, oh, ow := convShape("Conv2D", x, w, stride, pad)
	out := New(n, w.Shape[0], oh, ow)
	conv2d(out, x, w, stride, pad)
	return out
}

// convShape checks a convolution's operands and returns the output shape
// (N, O, OH, OW); it panics on a mismatch (a programmer error).
func convShape(op string, x, w *Tensor, stride, pad int) (n, o, oh, ow int) {
	n, c, h, wd := dims4(x)
	o, ci, kh, kw := dims4(w)
	if ci != c {
		panic(fmt.Sprintf("nn: %s: input has %d channels, kernel expects %d", op, c, ci))
	}
	if stride < 1 || pad < 0 || kh < 1 || kw < 1 {
		panic(fmt.Sprintf("nn: %s: stride %d, pad %d, kernel %dx%d", op, stride, pad, kh, kw))
	}
	oh, ow = ConvOutSize(h, kh, stride, pad), ConvOutSize(wd, kw, stride, pad)
	if h+2*pad < kh || wd+2*pad < kw {
		panic(fmt.Sprintf("nn: %s: %dx%d kernel larger than the %dx%d input padded by %d", op, kh, kw, h, wd, pad))
	}
	return n, o, oh, ow
}

// conv2d writes the convolution of x with w into dst [N,O,OH,OW], reusing
// pooled scratch. It is the implementation behind Conv2D, for kernels that
// manage their own output tensors.
func conv2d(dst, x, w *Tensor, stride, pad int) {
	n, o, oh, ow := convShape("Conv2D", x, w, stride, pad)
	_, c, h, wd := dims4(x)
	_, _, kh, kw := dims4(w)
	if !SameShape(dst.Shape, []int{n, o, oh, ow}) {
		panic(fmt.Sprintf("nn: Conv2D: output %v, want [%d %d %d %d]", dst.Shape, n, o, oh, ow))
	}
	if n == 0 || o == 0 {
		return
	}
	pix, kdim, chw := oh*ow, c*kh*kw, c*h*wd
	group := convGroup(n, pix)
	groups := (n + group - 1) / group
	g := Backend()
	if _, ok := g.(PureGo); ok {
		convGo(dst, x, w, stride, pad, group)
		return
	}
	direct := kh == 1 && kw == 1 && stride == 1 && pad == 0
	mul := func(b []float32, ldb, cols int, c []float32, ldc int) {
		g.Sgemm(false, false, o, cols, kdim, w.Data, kdim, b, ldb, 0, c, ldc)
	}
	if group <= 1 {
		// One product per image; images run in parallel and each product
		// splits across the cores left over (all of them at batch 1).
		ParallelFor(n, func(b int) {
			xb := x.Data[b*chw : (b+1)*chw]
			ob := dst.Data[b*o*pix : (b+1)*o*pix]
			if direct {
				mul(xb, pix, pix, ob, pix)
				return
			}
			col := getFloats(kdim * pix)
			im2col(xb, c, h, wd, kh, kw, stride, pad, oh, ow, *col, pix)
			mul(*col, pix, pix, ob, pix)
			putFloats(col)
		})
		return
	}
	// Small outputs: lay the columns of `group` images side by side,
	// B = [kdim, group·pix], compute W·B once, and scatter the result.
	ParallelFor(groups, func(gi int) {
		b0 := gi * group
		gb := min(group, n-b0)
		cols := gb * pix
		bp, cp := getFloats(kdim*cols), getFloats(o*cols)
		bm, cm := *bp, *cp
		for i := 0; i < gb; i++ {
			xb := x.Data[(b0+i)*chw : (b0+i+1)*chw]
			if direct {
				parallelChunks(c, 64, func(lo, hi int) {
					for ch := lo; ch < hi; ch++ {
						copy(bm[ch*cols+i*pix:][:pix], xb[ch*pix:][:pix])
					}
				})
				continue
			}
			im2col(xb, c, h, wd, kh, kw, stride, pad, oh, ow, bm[i*pix:], cols)
		}
		mul(bm, cols, cols, cm, cols)
		scatterGroup(dst.Data, cm, b0, gb, o, pix)
		putFloats(bp)
		putFloats(cp)
	})
}

// scatterGroup copies the product of a group of gb images, cm [o, gb·pix],
// into their NCHW outputs starting at image b0.
func scatterGroup(dst, cm []float32, b0, gb, o, pix int) {
	cols := gb * pix
	parallelChunks(o, 64, func(lo, hi int) {
		for oc := lo; oc < hi; oc++ {
			for i := 0; i < gb; i++ {
				copy(dst[((b0+i)*o+oc)*pix:][:pix], cm[oc*cols+i*pix:][:pix])
			}
		}
	})
}

// convGo is conv2d on the pure-Go GEMM: the kernel is packed once and the
// im2col matrix is never built, its panels are packed straight from the
// images (convPacker). Images are grouped as in conv2d.
func convGo(dst, x, w *Tensor, stride, pad, group int) {
	o, c, kh, kw := dims4(w)
	kdim := c * kh * kw
	pa := packAll(false, w.Data, kdim, o, kdim)
	defer pa.free()
	convPanels(dst, x, pa, kh, kw, stride, pad, false, group, nil)
}

// convPanels writes into dst [N,O,OH,OW] the product of the packed kernel pa
// (O × C·KH·KW, columns in the convPacker's row order: (ky, kx, ch) when
// hwc) with the patches of x, group images per product. Group output
// buffers come from a (nil: the pool).
func convPanels(dst, x *Tensor, pa *packedA, kh, kw, stride, pad int, hwc bool, group int, a *Arena) {
	n, c, h, wd := dims4(x)
	o := pa.m
	oh, ow := ConvOutSize(h, kh, stride, pad), ConvOutSize(wd, kw, stride, pad)
	pix, kdim, chw := oh*ow, c*kh*kw, c*h*wd
	groups := (n + group - 1) / group
	// Whole panels per image: each image's columns go straight to its NCHW
	// output (rows pix apart), no group buffer and no scatter afterwards.
	direct := pix%nr == 0
	var tmp []float32
	if group > 1 && a != nil && !direct {
		tmp = a.Get(groups * o * group * pix).Data
	}
	ParallelFor(groups, func(gi int) {
		b0 := gi * group
		gb := min(group, n-b0)
		cols := gb * pix
		out, ldc := dst.Data[b0*o*pix:(b0+gb)*o*pix], pix
		var cp *[]float32
		if gb > 1 && !direct {
			if tmp != nil {
				out = tmp[gi*o*group*pix:][:o*cols]
			} else {
				cp = getFloats(o * cols)
				out = *cp
			}
			ldc = cols
		}
		packer := newConvPacker(x.Data[b0*chw:(b0+gb)*chw], c, h, wd, kh, kw, stride, pad, oh, ow)
		packer.hwc = hwc
		if gb > 1 && direct {
			l := cLayout{pix: pix, img: o * pix}
			splitProduct(o, cols, kdim, func(i0, mb, j0, nb int) {
				gemmCoreLayout(mb, nb, kdim, pa, i0, &packer, j0, 0, dst.Data[(b0*o+i0)*pix:], pix, l)
			})
			return
		}
		splitProduct(o, cols, kdim, func(i0, mb, j0, nb int) {
			gemmCore(mb, nb, kdim, pa, i0, &packer, j0, 0, out[i0*ldc+j0:], ldc)
		})
		if gb > 1 {
			scatterGroup(dst.Data, out, b0, gb, o, pix)
		}
		if cp != nil {
			putFloats(cp)
		}
	})
}

// Im2Col lays out the patches of one image x [C,H,W] as col [C*KH*KW, OH*OW]:
// row (ch*KH+ky)*KW+kx holds, for every output pixel, the input value under
// that kernel tap (0 in the padding).
func Im2Col(x []float32, c, h, w, kh, kw, stride, pad, oh, ow int, col []float32) {
	im2col(x, c, h, w, kh, kw, stride, pad, oh, ow, col, oh*ow)
}

// im2col is Im2Col with rows ld apart in col, spread over the cores.
func im2col(x []float32, c, h, w, kh, kw, stride, pad, oh, ow int, col []float32, ld int) {
	rows := c * kh * kw
	parallelChunks(rows, 16, func(lo, hi int) {
		im2colRows(x, h, w, kh, kw, stride, pad, oh, ow, col, ld, lo, hi)
	})
}

// im2colRows fills rows [r0, r1) of the im2col matrix.
func im2colRows(x []float32, h, w, kh, kw, stride, pad, oh, ow int, col []float32, ld, r0, r1 int) {
	for r := r0; r < r1; r++ {
		ch, ky, kx := r/(kh*kw), (r/kw)%kh, r%kw
		plane := x[ch*h*w : (ch+1)*h*w]
		row := col[r*ld : r*ld+oh*ow]
		// Output columns whose input column is inside the image:
		// 0 <= xo*stride - pad + kx < w.
		lo := 0
		if d := pad - kx; d > 0 {
			lo = (d + stride - 1) / stride
		}
		hi := 0
		if d := w - 1 + pad - kx; d >= 0 {
			hi = min(ow, d/stride+1)
		}
		lo = min(lo, hi)
		for y := 0; y < oh; y++ {
			dst := row[y*ow : (y+1)*ow]
			iy := y*stride - pad + ky
			if iy < 0 || iy >= h || lo == hi {
				clear(dst)
				continue
			}
			src := plane[iy*w : (iy+1)*w]
			// Rows are short in the late blocks (4-16 pixels): plain loops
			// beat memclr/memmove calls there.
			for j := 0; j < lo; j++ {
				dst[j] = 0
			}
			for j := hi; j < ow; j++ {
				dst[j] = 0
			}
			ix := lo*stride - pad + kx
			if stride == 1 {
				seg, s := dst[lo:hi], src[ix:ix+hi-lo]
				if len(seg) > 32 {
					copy(seg, s)
					continue
				}
				for j := range seg {
					seg[j] = s[j]
				}
				continue
			}
			seg := dst[lo:hi]
			for j := range seg {
				seg[j] = src[ix]
				ix += stride
			}
		}
	}
}

// StandardizeWeight returns (w - mean) / sqrt(var + WSEpsilon) per output channel
// of an OIHW kernel, with the biased variance over (in, kh, kw).
func StandardizeWeight(w *Tensor) *Tensor {
	o := w.Shape[0]
	out := New(w.Shape...)
	if o == 0 {
		return out
	}
	per := w.Len() / o
	ParallelFor(o, func(i int) {
		src := w.Data[i*per : (i+1)*per]
		mean, variance := meanVar(src)
		inv := 1 / math.Sqrt(variance+WSEpsilon)
		dst := out.Data[i*per : (i+1)*per]
		for j, v := range src {
			dst[j] = float32((float64(v) - mean) * inv)
		}
	})
	return out
}

// meanVar returns the mean and the biased variance of s, accumulated in
// float64 over two passes (exact enough for any activation range).
func meanVar(s []float32) (mean, variance float64) {
	if len(s) == 0 {
		return 0, 0
	}
	mean = sumF64(s) / float64(len(s))
	return mean, sumSqDev(s, mean) / float64(len(s))
}

// GroupNorm normalises x [N,C,H,W] over groups of C/groups channels (and all
// pixels), then applies the per-channel affine gamma, beta.
func GroupNorm(x *Tensor, groups int, gamma, beta []float32) *Tensor {
	out := New(x.Shape...)
	groupNorm(out, x, groups, gamma, beta, false)
	return out
}

// GroupNormReLU is ReLU(GroupNorm(x)) in one pass over the data: the
// pre-activation of every BiT unit and of the head.
func GroupNormReLU(x *Tensor, groups int, gamma, beta []float32) *Tensor {
	out := New(x.Shape...)
	groupNorm(out, x, groups, gamma, beta, true)
	return out
}

// groupNorm writes GroupNorm(x) (then ReLU when relu is set) into dst, which
// may be x itself.
func groupNorm(dst, x *Tensor, groups int, gamma, beta []float32, relu bool) {
	n, c, h, w := dims4(x)
	if groups <= 0 || c%groups != 0 || len(gamma) != c || len(beta) != c || !SameShape(dst.Shape, x.Shape) {
		panic(fmt.Sprintf("nn: GroupNorm: x %v, %d groups, %d gamma, %d beta, dst %v", x.Shape, groups, len(gamma), len(beta), dst.Shape))
	}
	cpg, hw := c/groups, h*w
	size := cpg * hw
	ParallelFor(n*groups, func(ng int) {
		g := ng % groups
		off := ng * size
		src := x.Data[off : off+size]
		mean, variance := meanVar(src)
		inv := 1 / math.Sqrt(variance+GNEpsilon)
		for k := 0; k < cpg; k++ {
			ch := g*cpg + k
			scale := float32(inv) * gamma[ch]
			shift := beta[ch] - float32(mean)*scale
			scaleShift(dst.Data[off+k*hw:off+(k+1)*hw], src[k*hw:(k+1)*hw], scale, shift, relu)
		}
	})
}

// elementwiseChunk is the smallest slice worth handing to another core.
const elementwiseChunk = 1 << 15

// ReLUInPlace sets negative values of x to zero and returns x.
func ReLUInPlace(x *Tensor) *Tensor {
	parallelChunks(len(x.Data), elementwiseChunk, func(lo, hi int) {
		reluSlice(x.Data[lo:hi])
	})
	return x
}

// ZeroPad pads the two spatial dimensions of x [N,C,H,W] with p zeros per side.
func ZeroPad(x *Tensor, p int) *Tensor {
	n, c, h, w := dims4(x)
	if p < 0 {
		panic(fmt.Sprintf("nn: ZeroPad: negative pad %d", p))
	}
	oh, ow := h+2*p, w+2*p
	out := New(n, c, oh, ow)
	parallelChunks(n*c, 16, func(lo, hi int) {
		for nc := lo; nc < hi; nc++ {
			for y := 0; y < h; y++ {
				copy(out.Data[(nc*oh+y+p)*ow+p:][:w], x.Data[(nc*h+y)*w:][:w])
			}
		}
	})
	return out
}

// MaxPool applies a k×k max pool with the given stride and no padding.
func MaxPool(x *Tensor, k, stride int) *Tensor {
	n, c, h, w := dims4(x)
	if k < 1 || stride < 1 || h < k || w < k {
		panic(fmt.Sprintf("nn: MaxPool: x %v, window %d, stride %d", x.Shape, k, stride))
	}
	oh, ow := ConvOutSize(h, k, stride, 0), ConvOutSize(w, k, stride, 0)
	out := New(n, c, oh, ow)
	parallelChunks(n*c, 4, func(lo, hi int) {
		for nc := lo; nc < hi; nc++ {
			src := x.Data[nc*h*w : (nc+1)*h*w]
			dst := out.Data[nc*oh*ow : (nc+1)*oh*ow]
			for y := 0; y < oh; y++ {
				d := dst[y*ow : (y+1)*ow]
				// Start from the first window row, then fold in the others.
				row := src[y*stride*w:]
				for xo := range d {
					m := row[xo*stride]
					for _, v := range row[xo*stride+1 : xo*stride+k] {
						m = max(m, v)
					}
					d[xo] = m
				}
				for ky := 1; ky < k; ky++ {
					row := src[(y*stride+ky)*w:]
					for xo := range d {
						m := d[xo]
						for _, v := range row[xo*stride : xo*stride+k] {
							m = max(m, v)
						}
						d[xo] = m
					}
				}
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
	parallelChunks(n*c, max(1, elementwiseChunk/max(hw, 1)), func(lo, hi int) {
		for i := lo; i < hi; i++ {
			out.Data[i] = float32(sumF64(x.Data[i*hw:(i+1)*hw]) / float64(hw))
		}
	})
	return out
}

// Linear computes x [N,C] · w [C,K] + b [K], giving [N,K].
func Linear(x, w *Tensor, b []float32) *Tensor {
	if len(x.Shape) != 2 || len(w.Shape) != 2 || w.Shape[0] != x.Shape[1] || len(b) != w.Shape[1] {
		panic(fmt.Sprintf("nn: Linear: x %v, w %v, b %d", x.Shape, w.Shape, len(b)))
	}
	n, c, k := x.Shape[0], x.Shape[1], w.Shape[1]
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
	parallelChunks(len(dst.Data), elementwiseChunk, func(lo, hi int) {
		addSlice(dst.Data[lo:hi], src.Data[lo:hi])
	})
	return dst
}

func dims4(t *Tensor) (int, int, int, int) {
	if len(t.Shape) != 4 {
		panic(fmt.Sprintf("nn: want a 4-D tensor, got %v", t.Shape))
	}
	return t.Shape[0], t.Shape[1], t.Shape[2], t.Shape[3]
}
