package nn

import (
	"fmt"
	"math"
)

// Training-time forward kernels. They compute what GroupNorm, GlobalAvgPool
// and Linear compute, but write into caller-owned tensors (usually from an
// Arena) and save the statistics the matching backward kernels need (the
// convolutions are in convtrain.go, the root's pad and pool in padpool.go).

// convChunk is the number of images whose patch matrix (kdim rows of pix
// values each) fits in about convChunkFloats values.
func convChunk(n, kdim, pix int) int {
	return max(1, min(n, convChunkFloats/max(1, kdim*pix)))
}

// col2imAdd is the adjoint of im2col: it adds every patch value of col
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
