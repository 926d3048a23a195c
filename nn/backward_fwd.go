package nn

import (
	"fmt"
	"math"
)

// Training-time forward kernels. They compute what Conv2D, StandardizeWeight,
// GroupNorm, ZeroPad, MaxPool, GlobalAvgPool and Linear compute, but write
// into caller-owned tensors (usually from an Arena) and save the statistics
// the matching backward kernels need.

// Conv2DInto writes the convolution of x [N,C,H,W] with w [O,C,KH,KW] (no bias)
// into dst [N,O,OH,OW]. Images are processed in chunks as one product
// w · [patches of every image in the chunk], so the kernel is packed once per
// chunk rather than once per image (deep layers have few pixels per image).
// Scratch comes from a (nil allocates).
func Conv2DInto(dst, x, w *Tensor, stride, pad int, a *Arena) {
	n, c, h, wd := dims4(x)
	o, ci, kh, kw := dims4(w)
	oh, ow := ConvOutSize(h, kh, stride, pad), ConvOutSize(wd, kw, stride, pad)
	if ci != c || !SameShape(dst.Shape, []int{n, o, oh, ow}) {
		panic(fmt.Sprintf("nn: Conv2DInto: x %v, w %v, dst %v", x.Shape, w.Shape, dst.Shape))
	}
	g := Backend()
	pix, kdim := oh*ow, c*kh*kw
	chunk := convChunk(n, kdim, o, pix)
	m := a.Mark()
	defer a.Release(m)
	col := a.Get(kdim * chunk * pix)
	ycat := a.Get(o * chunk * pix)
	for b0 := 0; b0 < n; b0 += chunk {
		cn := min(chunk, n-b0)
		ld := cn * pix
		parallelW(cn, Workers(), func(_, i int) {
			b := b0 + i
			im2colInto(x.Data[b*c*h*wd:][:c*h*wd], c, h, wd, kh, kw, stride, pad, oh, ow, col.Data[i*pix:], ld)
		})
		g.Sgemm(false, false, o, ld, kdim, w.Data, kdim, col.Data, ld, 0, ycat.Data, ld)
		parallelW(cn, Workers(), func(_, i int) {
			out := dst.Data[(b0+i)*o*pix:][:o*pix]
			for oc := 0; oc < o; oc++ {
				copy(out[oc*pix:(oc+1)*pix], ycat.Data[oc*ld+i*pix:][:pix])
			}
		})
	}
}

// convChunk is the number of images whose patch matrix and output fit in
// about convChunkFloats values.
func convChunk(n, kdim, o, pix int) int {
	return max(1, min(n, convChunkFloats/max(1, (kdim+o)*pix)))
}

// im2colInto writes the patches of one image x [C,H,W] as the rows of col: row
// (ch*KH+ky)*KW+kx starts at col[row*ld] and holds OH*OW values.
func im2colInto(x []float32, c, h, w, kh, kw, stride, pad, oh, ow int, col []float32, ld int) {
	if kh == 1 && kw == 1 && stride == 1 && pad == 0 {
		for ch := 0; ch < c; ch++ {
			copy(col[ch*ld:][:h*w], x[ch*h*w:(ch+1)*h*w])
		}
		return
	}
	for ch := 0; ch < c; ch++ {
		plane := x[ch*h*w : (ch+1)*h*w]
		for ky := 0; ky < kh; ky++ {
			for kx := 0; kx < kw; kx++ {
				row := col[((ch*kh+ky)*kw+kx)*ld:][:oh*ow]
				for y := 0; y < oh; y++ {
					iy := y*stride - pad + ky
					dst := row[y*ow : (y+1)*ow]
					if iy < 0 || iy >= h {
						clear(dst)
						continue
					}
					src := plane[iy*w : (iy+1)*w]
					if stride == 1 {
						lo, hi := pad-kx, w+pad-kx // xo range with a valid ix
						lo, hi = max(lo, 0), min(hi, ow)
						if lo >= hi {
							clear(dst)
							continue
						}
						clear(dst[:lo])
						copy(dst[lo:hi], src[lo-pad+kx:hi-pad+kx])
						clear(dst[hi:])
						continue
					}
					for xo := range dst {
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

// col2imAdd is the adjoint of im2colInto: it adds every patch value of col
// back to its pixel of dx [C,H,W]. Rows are in (ch, ky, kx) order, or
// (ky, kx, ch) when hwc is set.
func col2imAdd(col []float32, ld, c, h, w, kh, kw, stride, pad, oh, ow int, hwc bool, dx []float32) {
	for ch := 0; ch < c; ch++ {
		plane := dx[ch*h*w : (ch+1)*h*w]
		for ky := 0; ky < kh; ky++ {
			for kx := 0; kx < kw; kx++ {
				r := (ch*kh+ky)*kw + kx
				if hwc {
					r = (ky*kw+kx)*c + ch
				}
				row := col[r*ld:][:oh*ow]
				for y := 0; y < oh; y++ {
					iy := y*stride - pad + ky
					if iy < 0 || iy >= h {
						continue
					}
					src := row[y*ow : (y+1)*ow]
					dst := plane[iy*w : (iy+1)*w]
					for xo, v := range src {
						ix := xo*stride - pad + kx
						if ix >= 0 && ix < w {
							dst[ix] += v
						}
					}
				}
			}
		}
	}
}

// StandardizeWeightInto writes the weight-standardised OIHW kernel w into dst
// and 1/sqrt(var+WSEpsilon) of each output channel into inv (len O).
func StandardizeWeightInto(dst, w *Tensor, inv []float32) {
	o := w.Shape[0]
	per := w.Len() / o
	if !SameShape(dst.Shape, w.Shape) || len(inv) != o {
		panic(fmt.Sprintf("nn: StandardizeWeightInto: w %v, dst %v, inv %d", w.Shape, dst.Shape, len(inv)))
	}
	parallelW(o, Workers(), func(_, i int) {
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
		s := 1 / math.Sqrt(variance+WSEpsilon)
		inv[i] = float32(s)
		out := dst.Data[i*per : (i+1)*per]
		for j, v := range src {
			out[j] = float32((float64(v) - mean) * s)
		}
	})
}

// GroupNormInto writes GroupNorm(x) (then ReLU when relu is set) into dst and
// the mean and 1/sqrt(var+GNEpsilon) of each (image, group) into mean and inv
// (len N*groups).
func GroupNormInto(dst, x *Tensor, groups int, gamma, beta, mean, inv []float32, relu bool) {
	n, c, h, w := dims4(x)
	if c%groups != 0 || len(gamma) != c || len(beta) != c || len(mean) != n*groups || len(inv) != n*groups || !SameShape(dst.Shape, x.Shape) {
		panic(fmt.Sprintf("nn: GroupNormInto: x %v, %d groups, gamma %d, beta %d, stats %d/%d, dst %v", x.Shape, groups, len(gamma), len(beta), len(mean), len(inv), dst.Shape))
	}
	cpg, hw := c/groups, h*w
	size := cpg * hw
	parallelChunks(n*groups, max(1, 4096/max(size, 1)), func(lo, hi int) {
		for ng := lo; ng < hi; ng++ {
			g := ng % groups
			off := ng * size
			src := x.Data[off : off+size]
			mu, variance := meanVar(src)
			s := 1 / math.Sqrt(variance+GNEpsilon)
			mean[ng], inv[ng] = float32(mu), float32(s)
			for k := 0; k < cpg; k++ {
				ch := g*cpg + k
				scale := float32(s) * gamma[ch]
				shift := beta[ch] - float32(mu)*scale
				if hw < 16 { // a few pixels: the plain loop, inlined
					scaleShiftGo(dst.Data[off+k*hw:off+(k+1)*hw], src[k*hw:(k+1)*hw], scale, shift, relu)
				} else {
					scaleShift(dst.Data[off+k*hw:off+(k+1)*hw], src[k*hw:(k+1)*hw], scale, shift, relu)
				}
			}
		}
	})
}

// ZeroPadInto writes x [N,C,H,W] padded with p zeros on each spatial side into
// dst [N,C,H+2p,W+2p].
func ZeroPadInto(dst, x *Tensor, p int) {
	n, c, h, w := dims4(x)
	oh, ow := h+2*p, w+2*p
	if !SameShape(dst.Shape, []int{n, c, oh, ow}) {
		panic(fmt.Sprintf("nn: ZeroPadInto: x %v, pad %d, dst %v", x.Shape, p, dst.Shape))
	}
	parallelChunks(n*c, 16, func(lo, hi int) {
		for nc := lo; nc < hi; nc++ {
			clear(dst.Data[nc*oh*ow : (nc+1)*oh*ow])
			for y := 0; y < h; y++ {
				copy(dst.Data[(nc*oh+y+p)*ow+p:][:w], x.Data[(nc*h+y)*w:][:w])
			}
		}
	})
}

// MaxPoolInto writes the k×k, stride, unpadded max pool of x into dst.
func MaxPoolInto(dst, x *Tensor, k, stride int) {
	n, c, h, w := dims4(x)
	oh, ow := ConvOutSize(h, k, stride, 0), ConvOutSize(w, k, stride, 0)
	if !SameShape(dst.Shape, []int{n, c, oh, ow}) {
		panic(fmt.Sprintf("nn: MaxPoolInto: x %v, k %d, stride %d, dst %v", x.Shape, k, stride, dst.Shape))
	}
	parallelW(n*c, Workers(), func(_, nc int) {
		src := x.Data[nc*h*w : (nc+1)*h*w]
		out := dst.Data[nc*oh*ow : (nc+1)*oh*ow]
		for y := 0; y < oh; y++ {
			for xo := 0; xo < ow; xo++ {
				out[y*ow+xo] = src[maxPoolArg(src, w, k, y*stride, xo*stride)]
			}
		}
	})
}

// maxPoolArg is the index in plane (row length w) of the first maximum of the
// k×k window at (y0, x0), in row-major scan order.
func maxPoolArg(plane []float32, w, k, y0, x0 int) int {
	best := y0*w + x0
	m := plane[best]
	for ky := 0; ky < k; ky++ {
		row := (y0+ky)*w + x0
		for kx := 0; kx < k; kx++ {
			if v := plane[row+kx]; v > m {
				m, best = v, row+kx
			}
		}
	}
	return best
}

// GlobalAvgPoolInto writes the spatial mean of x [N,C,H,W] into dst [N,C].
func GlobalAvgPoolInto(dst, x *Tensor) {
	n, c, h, w := dims4(x)
	if dst.Len() != n*c {
		panic(fmt.Sprintf("nn: GlobalAvgPoolInto: x %v, dst %v", x.Shape, dst.Shape))
	}
	hw := h * w
	for i := 0; i < n*c; i++ {
		var s float64
		for _, v := range x.Data[i*hw : (i+1)*hw] {
			s += float64(v)
		}
		dst.Data[i] = float32(s / float64(hw))
	}
}

// LinearInto writes x [N,C] · w [C,K] + b [K] into dst [N,K].
func LinearInto(dst, x, w *Tensor, b []float32) {
	n, c := x.Shape[0], x.Shape[1]
	k := w.Shape[1]
	if w.Shape[0] != c || len(b) != k || dst.Len() != n*k {
		panic(fmt.Sprintf("nn: LinearInto: x %v, w %v, b %d, dst %v", x.Shape, w.Shape, len(b), dst.Shape))
	}
	for i := 0; i < n; i++ {
		copy(dst.Data[i*k:(i+1)*k], b)
	}
	Backend().Sgemm(false, false, n, k, c, x.Data, c, w.Data, k, 1, dst.Data, k)
}
