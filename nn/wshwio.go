package nn

import (
	"fmt"
	"math"
)

// Weight standardisation in the checkpoint layout [KH,KW,I,O]: each output
// channel is a column of the (KH·KW·I) × O matrix, so every pass streams
// whole rows (vector loops over the columns), and the rows are split over the
// cores. Column sums are taken per chunk of rows and the chunks added in
// order, so results do not depend on the number of cores.

// wsChunks is the most row chunks a column reduction is split into.
const wsChunks = 8

// colMoments returns, per column j of the rows×cols matrix w, Σ w and Σ w²
// over the rows, in float64 (wsGradSums with a unit scale: w·1 + 0 is w).
func colMoments(w []float32, rows, cols int) (sum, ssq []float64) {
	one, zero := unitAffine(cols)
	return colReduce(rows, cols, func(pa, pb []float64, lo, n int) {
		wsGradSums(pa, pb, w[lo*cols:], nil, w[lo*cols:], one, zero, n, cols)
	})
}

// unitAffine returns cols ones and cols zeros: the scale and shift under
// which wsGradSums sums a matrix's own values and squares.
func unitAffine(cols int) (one, zero []float32) {
	unit := make([]float32, 2*cols)
	one, zero = unit[:cols], unit[cols:]
	for j := range one {
		one[j] = 1
	}
	return one, zero
}

// colReduce returns two float64 sums per column of a rows×cols matrix:
// add(pa, pb, lo, n) adds rows lo..lo+n-1 into pa and pb (zeroed, len
// cols); chunks of rows run in parallel and are added in order.
func colReduce(rows, cols int, add func(pa, pb []float64, lo, n int)) (sa, sb []float64) {
	per := max(16, (rows+wsChunks-1)/wsChunks)
	chunks := (rows + per - 1) / per
	part := make([]float64, 2*max(chunks, 1)*cols)
	ParallelFor(chunks, func(ci int) {
		pa, pb := part[2*ci*cols:][:cols], part[(2*ci+1)*cols:][:cols]
		lo := ci * per
		add(pa, pb, lo, min(rows, lo+per)-lo)
	})
	sa, sb = part[:cols], part[cols:2*cols]
	for ci := 1; ci < chunks; ci++ {
		pa, pb := part[2*ci*cols:][:cols], part[(2*ci+1)*cols:][:cols]
		for j := range sa {
			sa[j] += pa[j]
			sb[j] += pb[j]
		}
	}
	return sa, sb
}

// rowsAffine sets (or adds to, when acc) each row of out g·a + w·b + c, with
// a, b, c per column.
func rowsAffine(out, g, w []float32, a, b, c []float32, rows, cols int, acc bool) {
	parallelChunks(rows, max(1, 4096/max(cols, 1)), func(lo, hi int) {
		for r := lo; r < hi; r++ {
			colAffine(out[r*cols:][:cols], g[r*cols:][:cols], w[r*cols:][:cols], a, b, c, acc)
		}
	})
}

// StandardizeHWIOInto writes the weight-standardised kernel of w [KH,KW,I,O]
// into dst (same shape) and 1/sqrt(var+WSEpsilon) of each output channel
// into inv (len O): per output channel, (w - mean) * inv with the biased
// variance over (KH, KW, I), the moments accumulated in float64.
func StandardizeHWIOInto(dst, w *Tensor, inv []float32) {
	_, _, _, co := dims4(w)
	if !SameShape(dst.Shape, w.Shape) || len(inv) != co {
		panic(fmt.Sprintf("nn: StandardizeHWIOInto: w %v, dst %v, inv %d", w.Shape, dst.Shape, len(inv)))
	}
	s := WS{Scale: inv, Shift: make([]float32, co)}
	wsMoments(w, s.Scale, s.Shift)
	s.apply(dst, w)
}

// StandardizePrepareHWIO prepares w [KH,KW,I,O] for a training step's
// convolutions on its standardisation: it measures the standardisation
// (k.WS) and packs the standardised kernel's forward operand, and the input
// gradient's when dx is set, as PrepareHWIO would pack the standardised
// kernel, without writing that kernel out: one pass over blocks of at most
// mr rows, each standardised into a small scratch and packed into both
// operands while in cache. k.W is w itself. Packed panels come from a.
func StandardizePrepareHWIO(w *Tensor, stride, pad int, dx bool, a *Arena) *HWIOKernel {
	return prepareStandardized(w, stride, pad, dx, a, func(scale, shift []float32) { wsMoments(w, scale, shift) })
}

// prepareStandardized is StandardizePrepareHWIO with the standardisation's
// coefficients written by measure.
func prepareStandardized(w *Tensor, stride, pad int, dx bool, a *Arena, measure func(scale, shift []float32)) *HWIOKernel {
	kh, kw, ci, co := dims4(w)
	rows, taps := kh*kw*ci, kh*kw
	coef := a.Get(3 * co).Data
	scale, zero, shift := coef[:co], coef[co:2*co], coef[2*co:]
	measure(scale, shift)
	clear(zero)
	k := &HWIOKernel{W: w, WS: WS{Scale: scale, Shift: shift}, fwd: &packedA{data: a.Get(packedLen(co, rows)).Data, m: co, k: rows}}
	// Blocks of rows [r0, r0+n) with where their input-gradient panel goes.
	// The flipped kernel (stride-1 dX) has one panel per mr input
	// channels, tap by tap in reverse order; col2im's operand is w itself,
	// one panel per mr rows.
	flipped := dx && flippedDX(kh, kw, stride, pad)
	var blocks int
	switch {
	case flipped:
		k.dx = &packedA{data: a.Get(packedLen(ci, taps*co)).Data, m: ci, k: taps * co}
		blocks = taps * ((ci + mr - 1) / mr)
	case dx:
		k.dx = &packedA{data: a.Get(packedLen(rows, co)).Data, m: rows, k: co}
		fallthrough
	default:
		blocks = (rows + mr - 1) / mr
	}
	block := func(b int) (r0, n int, dst []float32) {
		if flipped {
			per := (ci + mr - 1) / mr
			t, c0 := b/per, b%per*mr
			r0, n = t*ci+c0, min(mr, ci-c0)
			return r0, n, k.dx.data[c0*taps*co+(taps-1-t)*co*mr:]
		}
		r0, n = b*mr, min(mr, rows-b*mr)
		if k.dx != nil {
			dst = k.dx.data[r0*co:]
		}
		return r0, n, dst
	}
	// Groups of consecutive blocks (their rows are consecutive) are
	// standardised into a scratch of about wsScratch values, so that each
	// forward panel gets a run of steps per group, not mr.
	group := max(1, wsScratch/(mr*co))
	parallelChunks(blocks, group, func(lo, hi int) {
		buf := getFloats(group * mr * co)
		defer putFloats(buf)
		for g := lo; g < hi; g += group {
			gEnd := min(hi, g+group)
			first, _, _ := block(g)
			last, n, _ := block(gEnd - 1)
			scratch := (*buf)[:(last+n-first)*co]
			for r := first; r < last+n; r++ {
				src := w.Data[r*co:][:co]
				colAffine(scratch[(r-first)*co:][:co], src, src, scale, zero, shift, false)
			}
			packTransRows(scratch, co, co, first, last+n, rows, k.fwd.data) // op(A) = wsᵀ: O × K
			if k.dx == nil {
				continue
			}
			for b := g; b < gEnd; b++ {
				r0, n, dst := block(b)
				packA(false, scratch[(r0-first)*co:], co, 0, n, 0, co, dst) // rows of ws, mr per panel
			}
		}
	})
	return k
}

// wsScratch is about how many values StandardizePrepareHWIO standardises
// at a time (in L2).
const wsScratch = 1 << 16

// wsMoments measures the per-output-channel moments of w [KH,KW,I,O] and
// writes the affine coefficients of its standardisation, ws = w·scale +
// shift (scale = 1/std).
func wsMoments(w *Tensor, scale, shift []float32) {
	kh, kw, ci, co := dims4(w)
	rows := kh * kw * ci
	sum, ssq := colMoments(w.Data, rows, co)
	wsFromMoments(sum, ssq, rows, scale, shift)
}

// wsFromMoments writes the standardisation coefficients of columns whose
// rows values sum to sum and whose squares sum to ssq.
func wsFromMoments(sum, ssq []float64, rows int, scale, shift []float32) {
	for j := range scale {
		mean := sum[j] / float64(rows)
		variance := max(0, ssq[j]/float64(rows)-mean*mean)
		s := 1 / math.Sqrt(variance+WSEpsilon)
		scale[j], shift[j] = float32(s), float32(-mean*s)
	}
}

// StandardizeBackwardHWIO is the backward of the standardisation s of w
// [KH,KW,I,O] (ws = w·s.Scale + s.Shift): from gs, the gradient with
// respect to ws, it writes the gradient with respect to w, dw = Scale·(gs -
// mean(gs) - ws·mean(gs·ws)) per output channel (overwritten, or added to
// when accumulate is set). All in [KH,KW,I,O]. A training step uses the
// fused StandardizedSGD instead.
func StandardizeBackwardHWIO(w *Tensor, s WS, gs, dw *Tensor, accumulate bool) {
	kh, kw, ci, co := dims4(w)
	if !SameShape(gs.Shape, w.Shape) || !SameShape(dw.Shape, w.Shape) || len(s.Scale) != co || len(s.Shift) != co {
		panic(fmt.Sprintf("nn: StandardizeBackwardHWIO: w %v, gs %v, dw %v, scale %d, shift %d", w.Shape, gs.Shape, dw.Shape, len(s.Scale), len(s.Shift)))
	}
	b, c := s.backwardCoefs(w, gs.Data, nil)
	ws := New(w.Shape...)
	s.apply(ws, w)
	rowsAffine(dw.Data, gs.Data, ws.Data, s.Scale, b, c, kh*kw*ci, co, accumulate)
}

// apply writes the standardised kernel w·s.Scale + s.Shift into dst.
func (s WS) apply(dst, w *Tensor) {
	co := len(s.Scale)
	rowsAffine(dst.Data, w.Data, w.Data, s.Scale, make([]float32, co), s.Shift, w.Len()/co, co, false)
}

// backwardCoefs returns the per-output-channel coefficients of the
// standardisation backward, dw = gs·Scale + ws·b + c, for gs = g0 (+ g1
// when not nil), the gradient with respect to ws = w·Scale + Shift: b =
// -Scale·mean(gs·ws) and c = -Scale·mean(gs), the column sums taken in
// float64 without materialising ws or gs.
func (s WS) backwardCoefs(w *Tensor, g0, g1 []float32) (b, c []float32) {
	co := len(s.Scale)
	rows := w.Len() / co
	sg, sgw := colReduce(rows, co, func(pa, pb []float64, lo, n int) {
		wsGradSums(pa, pb, g0[lo*co:], rowsFrom(g1, lo*co), w.Data[lo*co:], s.Scale, s.Shift, n, co)
	})
	coef := make([]float32, 2*co)
	b, c = coef[:co], coef[co:]
	for j := range b {
		sc := float64(s.Scale[j])
		b[j], c[j] = float32(-sc*sgw[j]/float64(rows)), float32(-sc*sg[j]/float64(rows))
	}
	return b, c
}

// rowsFrom is d[off:], or nil for a nil d (an absent second gradient).
func rowsFrom(d []float32, off int) []float32 {
	if d == nil {
		return nil
	}
	return d[off:]
}

// WS is the weight standardisation of a kernel w [KH,KW,I,O]: ws = w·Scale
// + Shift per output channel, with Scale = 1/sqrt(var+WSEpsilon) and Shift
// = -mean·Scale (biased moments over KH·KW·I, accumulated in float64).
type WS struct{ Scale, Shift []float32 }

// StandardizationHWIO measures the standardisation of w [KH,KW,I,O].
func StandardizationHWIO(w *Tensor) WS {
	co := w.Shape[3]
	coef := make([]float32, 2*co)
	s := WS{Scale: coef[:co], Shift: coef[co:]}
	wsMoments(w, s.Scale, s.Shift)
	return s
}

// StandardizedSGD updates the kernel w [KH,KW,I,O] in place by one step of
// SGD with momentum (velocity v, same shape), from g0 + g1, the gradient
// with respect to its standardisation ws = w·s.Scale + s.Shift (g1 may be
// nil). It gives what StandardizeBackwardHWIO followed by the update
//
//	v ← momentum·v + dw + weightDecay·w,  w ← w − lr·v
//
// gives, in two passes over the rows instead of five and without
// materialising ws, g0+g1 or dw: the first takes the column sums the
// standardisation backward needs, the second updates w and v.
func StandardizedSGD(w, v *Tensor, s WS, g0, g1 *Tensor, momentum, lr, weightDecay float32) {
	rows, co, g1d := checkSGD("StandardizedSGD", w, v, s, g0, g1)
	b, c := s.backwardCoefs(w, g0.Data, g1d)
	parallelChunks(rows, max(1, 4096/max(co, 1)), func(lo, hi int) {
		for r := lo; r < hi; r++ {
			wsSGDRows(w, v, g0.Data, g1d, s, b, c, r, 1, momentum, lr, weightDecay)
		}
	})
}

// checkSGD panics unless the operands of a standardised SGD step (op) fit w
// [KH,KW,I,O]; it returns w's rows and columns and g1's values (nil for a
// nil g1).
func checkSGD(op string, w, v *Tensor, s WS, g0, g1 *Tensor) (rows, co int, g1d []float32) {
	kh, kw, ci, co := dims4(w)
	if !SameShape(v.Shape, w.Shape) || !SameShape(g0.Shape, w.Shape) || (g1 != nil && !SameShape(g1.Shape, w.Shape)) ||
		len(s.Scale) != co || len(s.Shift) != co {
		panic(fmt.Sprintf("nn: %s: w %v, v %v, g0 %v, scale %d, shift %d", op, w.Shape, v.Shape, g0.Shape, len(s.Scale), len(s.Shift)))
	}
	if g1 != nil {
		g1d = g1.Data
	}
	return kh * kw * ci, co, g1d
}

// wsSGDRows runs StandardizedSGD's update over rows r..r+n-1.
func wsSGDRows(w, v *Tensor, g0, g1 []float32, s WS, b, c []float32, r, n int, momentum, lr, weightDecay float32) {
	co := len(s.Scale)
	for ; n > 0; r, n = r+1, n-1 {
		o := r * co
		g1r := rowsFrom(g1, o)
		if g1r != nil {
			g1r = g1r[:co]
		}
		wsSGDRow(w.Data[o:][:co], v.Data[o:][:co], g0[o:][:co], g1r, s.Scale, s.Shift, b, c, momentum, lr, weightDecay)
	}
}

// StandardizedSGDPrepare is StandardizedSGD followed by
// StandardizePrepareHWIO(w, stride, pad, dx, a) of the updated kernel, to
// the bit, with the new standardisation's moments taken in the update pass
// while each block of updated rows is in cache (one read of w fewer). s may
// live in a (reset by the caller): it is read only before anything is
// taken from a.
func StandardizedSGDPrepare(w, v *Tensor, s WS, g0, g1 *Tensor, momentum, lr, weightDecay float32, stride, pad int, dx bool, a *Arena) *HWIOKernel {
	rows, co, g1d := checkSGD("StandardizedSGDPrepare", w, v, s, g0, g1)
	b, c := s.backwardCoefs(w, g0.Data, g1d)
	// The moments' row chunks and order are colMoments' (colReduce, blocks
	// of wsGradSums), so the sums are the bits a separate pass would take.
	one, zero := unitAffine(co)
	const block = 4
	sum, ssq := colReduce(rows, co, func(pa, pb []float64, lo, n int) {
		for r := lo; r < lo+n; r += block {
			m := min(block, lo+n-r)
			wsSGDRows(w, v, g0.Data, g1d, s, b, c, r, m, momentum, lr, weightDecay)
			wsGradSums(pa, pb, w.Data[r*co:], nil, w.Data[r*co:], one, zero, m, co)
		}
	})
	return prepareStandardized(w, stride, pad, dx, a, func(scale, shift []float32) { wsFromMoments(sum, ssq, rows, scale, shift) })
}
