package nn

import "fmt"

// Backward kernels. Each takes the upstream gradient dy of an op's output and
// writes the gradients of its inputs. Gradient outputs that are nil are not
// computed (a frozen weight, an input that needs no gradient). Input gradients
// are overwritten; weight gradients are overwritten, or added to when
// accumulate is set (gradient accumulation over micro-batches). All kernels
// are deterministic: reductions run in a fixed order whatever the number of
// cores.

// convChunkFloats bounds the col2im scratch of a strided convolution's input
// gradient: images are processed in chunks whose patch matrix holds at most
// this many values.
const convChunkFloats = 1 << 22

// GroupNormBackward is the backward of GroupNormInto(y, x, groups, gamma, beta,
// mean, inv, relu): y is the op's output when relu was applied (the ReLU mask
// is y > 0) and nil otherwise. It writes dx and the per-channel dgamma, dbeta.
func GroupNormBackward(x, y *Tensor, groups int, gamma, mean, inv []float32, dy, dx *Tensor, dgamma, dbeta []float32, accumulate bool, a *Arena) {
	n, c, h, w := dims4(x)
	if c%groups != 0 || len(gamma) != c || len(mean) != n*groups || len(inv) != n*groups ||
		!SameShape(dy.Shape, x.Shape) || (y != nil && !SameShape(y.Shape, x.Shape)) ||
		(dx != nil && !SameShape(dx.Shape, x.Shape)) || (dgamma != nil && len(dgamma) != c) || (dbeta != nil && len(dbeta) != c) {
		panic(fmt.Sprintf("nn: GroupNormBackward: x %v, y %v, dy %v, dx %v, %d groups", x.Shape, y, dy.Shape, dx, groups))
	}
	cpg, hw := c/groups, h*w
	size := cpg * hw
	m := a.Mark()
	defer a.Release(m)
	// Per-(image, channel) partial sums of dy*xhat and dy, reduced over the
	// batch in order afterwards so the result does not depend on scheduling.
	pg, pb := a.Get(n*c), a.Get(n*c)
	parallelChunks(n*groups, max(1, 4096/max(size, 1)), func(lo, hi int) {
		for ng := lo; ng < hi; ng++ {
			gnBackwardGroup(x, y, dy, dx, ng, groups, cpg, hw, gamma, mean, inv, pg.Data, pb.Data)
		}
	})
	// Image by image (rows of part), each channel's sum in the same order as
	// a column walk would take, with contiguous reads.
	sum := make([]float64, c)
	reduce := func(dst []float32, part *Tensor) {
		if dst == nil {
			return
		}
		clear(sum)
		for b := 0; b < n; b++ {
			for ch, v := range part.Data[b*c : (b+1)*c] {
				sum[ch] += float64(v)
			}
		}
		for ch, t := range sum {
			if accumulate {
				dst[ch] += float32(t)
			} else {
				dst[ch] = float32(t)
			}
		}
	}
	reduce(dgamma, pg)
	reduce(dbeta, pb)
}

// ReLUBackward writes dx = dy where the ReLU output y is positive, else 0.
// dx may be dy.
func ReLUBackward(y, dy, dx *Tensor) {
	if !SameShape(y.Shape, dy.Shape) || !SameShape(dx.Shape, dy.Shape) {
		panic(fmt.Sprintf("nn: ReLUBackward: y %v, dy %v, dx %v", y.Shape, dy.Shape, dx.Shape))
	}
	for i, v := range y.Data {
		if v > 0 {
			dx.Data[i] = dy.Data[i]
		} else {
			dx.Data[i] = 0
		}
	}
}

// GlobalAvgPoolBackward spreads dy [N,C] evenly over dx [N,C,H,W].
func GlobalAvgPoolBackward(dy, dx *Tensor) {
	n, c, h, w := dims4(dx)
	if dy.Len() != n*c {
		panic(fmt.Sprintf("nn: GlobalAvgPoolBackward: dy %v, dx %v", dy.Shape, dx.Shape))
	}
	hw := h * w
	for i := 0; i < n*c; i++ {
		v := dy.Data[i] / float32(hw)
		out := dx.Data[i*hw : (i+1)*hw]
		for j := range out {
			out[j] = v
		}
	}
}

// LinearBackward is the backward of LinearInto(y, x, w, b): dx = dy·wᵀ,
// dw = xᵀ·dy, db = column sums of dy. Scratch comes from a (nil allocates).
func LinearBackward(x, w, dy, dx, dw *Tensor, db []float32, accumulate bool, a *Arena) {
	n, c := x.Shape[0], x.Shape[1]
	k := w.Shape[1]
	if w.Shape[0] != c || dy.Len() != n*k || (dx != nil && dx.Len() != n*c) || (dw != nil && dw.Len() != c*k) || (db != nil && len(db) != k) {
		panic(fmt.Sprintf("nn: LinearBackward: x %v, w %v, dy %v", x.Shape, w.Shape, dy.Shape))
	}
	g := Backend()
	if dx != nil {
		g.Sgemm(false, true, n, c, k, dy.Data, k, w.Data, k, 0, dx.Data, c)
	}
	beta := float32(0)
	if accumulate {
		beta = 1
	}
	if dw != nil {
		m := a.Mark()
		xt := a.Get(c, n)
		transposeInto(xt.Data, x.Data, n, c)
		g.Sgemm(false, false, c, k, n, xt.Data, n, dy.Data, k, beta, dw.Data, k)
		a.Release(m)
	}
	if db != nil {
		for j := 0; j < k; j++ {
			var s float64
			for i := 0; i < n; i++ {
				s += float64(dy.Data[i*k+j])
			}
			if accumulate {
				db[j] += float32(s)
			} else {
				db[j] = float32(s)
			}
		}
	}
}

// transposeInto writes the cols×rows transpose of the rows×cols matrix src.
func transposeInto(dst, src []float32, rows, cols int) {
	const blk = 32
	for i0 := 0; i0 < rows; i0 += blk {
		for j0 := 0; j0 < cols; j0 += blk {
			for i := i0; i < min(i0+blk, rows); i++ {
				for j := j0; j < min(j0+blk, cols); j++ {
					dst[j*rows+i] = src[i*cols+j]
				}
			}
		}
	}
}

// gnBackwardGroup is GroupNormBackward for group ng (image ng/groups): the
// per-channel partial sums into pg, pb and, when dx is set, dx. Channels of
// fewer than 16 pixels take the plain loops (no vector call per channel).
func gnBackwardGroup(x, y, dy, dx *Tensor, ng, groups, cpg, hw int, gamma, mean, inv, pg, pb []float32) {
	if hw < 16 {
		gnBackwardGroupSmall(x, y, dy, dx, ng, groups, cpg, hw, gamma, mean, inv, pg, pb)
		return
	}
	c, size := groups*cpg, cpg*hw
	b, g := ng/groups, ng%groups
	off := ng * size
	mu, s := mean[ng], inv[ng]
	var s1, s2 float64 // sums of dxhat and dxhat*xhat over the group
	for k := 0; k < cpg; k++ {
		ch := g*cpg + k
		var ys []float32
		if y != nil {
			ys = y.Data[off+k*hw : off+(k+1)*hw]
		}
		var sdy, sdyx float64
		if hw < 16 { // direct calls: the plain loop inlines
			sdy, sdyx = gnSumsGo(dy.Data[off+k*hw:off+(k+1)*hw], x.Data[off+k*hw:off+(k+1)*hw], ys, float64(mu))
		} else {
			sdy, sdyx = gnSums(dy.Data[off+k*hw:off+(k+1)*hw], x.Data[off+k*hw:off+(k+1)*hw], ys, float64(mu))
		}
		sdyx *= float64(s) // Σ dy·xhat
		pg[b*c+ch], pb[b*c+ch] = float32(sdyx), float32(sdy)
		s1 += sdy * float64(gamma[ch])
		s2 += sdyx * float64(gamma[ch])
	}
	if dx == nil {
		return
	}
	// dx = s·(m·dy·gamma - m1 - xhat·m2) with xhat = (x-mu)·s.
	m1, m2 := s1/float64(size), s2/float64(size)
	sf := float64(s)
	for k := 0; k < cpg; k++ {
		ch := g*cpg + k
		var ys []float32
		if y != nil {
			ys = y.Data[off+k*hw : off+(k+1)*hw]
		}
		ka, kb, kc := float32(sf*float64(gamma[ch])), float32(-sf*sf*m2), float32(-sf*m1)
		if hw < 16 {
			gnApplyGo(dx.Data[off+k*hw:off+(k+1)*hw], dy.Data[off+k*hw:off+(k+1)*hw], x.Data[off+k*hw:off+(k+1)*hw], ys, mu, ka, kb, kc)
		} else {
			gnApply(dx.Data[off+k*hw:off+(k+1)*hw], dy.Data[off+k*hw:off+(k+1)*hw], x.Data[off+k*hw:off+(k+1)*hw], ys, mu, ka, kb, kc)
		}
	}
}

// gnBackwardGroupSmall is gnBackwardGroup for channels of a few pixels
// (late blocks of small images, down to 1x1): flat loops over the group's
// values, sliced once, so the per-channel cost is a few instructions.
func gnBackwardGroupSmall(x, y, dy, dx *Tensor, ng, groups, cpg, hw int, gamma, mean, inv, pg, pb []float32) {
	c, size := groups*cpg, cpg*hw
	b, g := ng/groups, ng%groups
	off := ng * size
	xs, ds := x.Data[off:off+size], dy.Data[off:off+size]
	var ys []float32
	if y != nil {
		ys = y.Data[off : off+size]
	}
	mu, sf := float64(mean[ng]), float64(inv[ng])
	gam := gamma[g*cpg : (g+1)*cpg]
	pgs, pbs := pg[b*c+g*cpg:][:cpg], pb[b*c+g*cpg:][:cpg]
	var s1, s2 float64 // sums of dxhat and dxhat*xhat over the group
	for k := range gam {
		var sdy, sdyx float64
		for j := k * hw; j < (k+1)*hw; j++ {
			if ys != nil && ys[j] <= 0 {
				continue
			}
			d := float64(ds[j])
			sdy += d
			sdyx += d * (float64(xs[j]) - mu)
		}
		sdyx *= sf // Σ dy·xhat
		pgs[k], pbs[k] = float32(sdyx), float32(sdy)
		s1 += sdy * float64(gam[k])
		s2 += sdyx * float64(gam[k])
	}
	if dx == nil {
		return
	}
	// dx = s·(m·dy·gamma - m1 - xhat·m2) with xhat = (x-mu)·s, as gnApply.
	m1, m2 := s1/float64(size), s2/float64(size)
	out := dx.Data[off : off+size]
	muf, kb, kc := float32(mean[ng]), float32(-sf*sf*m2), float32(-sf*m1)
	for k, gk := range gam {
		ka := float32(sf * float64(gk))
		for j := k * hw; j < (k+1)*hw; j++ {
			v := kb*(xs[j]-muf) + kc
			if ys == nil || ys[j] > 0 {
				v += ka * ds[j]
			}
			out[j] = v
		}
	}
}
