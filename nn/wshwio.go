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

// colSums returns, per column j of the rows×cols matrices g and w, Σ g and
// Σ g·w over the rows, in float64.
func colSums(g, w []float32, rows, cols int) (sa, sb []float64) {
	per := max(16, (rows+wsChunks-1)/wsChunks)
	chunks := (rows + per - 1) / per
	part := make([]float64, 2*chunks*cols)
	ParallelFor(chunks, func(ci int) {
		pa, pb := part[2*ci*cols:][:cols], part[(2*ci+1)*cols:][:cols]
		lo := ci * per
		colDotRows(pa, pb, g[lo*cols:], w[lo*cols:], min(rows, lo+per)-lo, cols)
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
	kh, kw, ci, co := dims4(w)
	if !SameShape(dst.Shape, w.Shape) || len(inv) != co {
		panic(fmt.Sprintf("nn: StandardizeHWIOInto: w %v, dst %v, inv %d", w.Shape, dst.Shape, len(inv)))
	}
	rows := kh * kw * ci
	scale, zero, shift := wsCoefficients(w, inv)
	rowsAffine(dst.Data, w.Data, w.Data, scale, zero, shift, rows, co, false)
}

// StandardizePrepareHWIO is StandardizeHWIOInto (into a tensor from a)
// followed by PrepareHWIO, with the forward operand's panels written in the
// same pass over the rows as the standardised values, while those are in
// cache. It returns the prepared kernel and 1/std per output channel.
func StandardizePrepareHWIO(w *Tensor, stride, pad int, dx bool, a *Arena) (*HWIOKernel, []float32) {
	kh, kw, ci, co := dims4(w)
	rows := kh * kw * ci
	ws, inv := a.Get(w.Shape...), a.Get(co).Data
	scale, zero, shift := wsCoefficients(w, inv)
	k := &HWIOKernel{W: ws, fwd: &packedA{data: a.Get(packedLen(co, rows)).Data, m: co, k: rows}}
	parallelChunks(rows, max(1, 4096/max(co, 1)), func(lo, hi int) {
		for r := lo; r < hi; r++ {
			colAffine(ws.Data[r*co:][:co], w.Data[r*co:][:co], w.Data[r*co:][:co], scale, zero, shift, false)
		}
		packTransRows(ws.Data, co, co, lo, hi, rows, k.fwd.data) // op(A) = wsᵀ: O × K
	})
	if dx {
		k.dx = packDX(ws, stride, pad, a)
	}
	return k, inv
}

// wsCoefficients measures the per-output-channel moments of w [KH,KW,I,O]
// and returns the affine coefficients of its standardisation (ws = w·scale
// + shift; zero is a zero vector for colAffine's second term), writing
// 1/std into inv.
func wsCoefficients(w *Tensor, inv []float32) (scale, zero, shift []float32) {
	kh, kw, ci, co := dims4(w)
	rows := kh * kw * ci
	sum, ssq := colSums(w.Data, w.Data, rows, co)
	coef := make([]float32, 3*co)
	scale, zero, shift = coef[:co], coef[co:2*co], coef[2*co:]
	for j := range scale {
		mean := sum[j] / float64(rows)
		variance := max(0, ssq[j]/float64(rows)-mean*mean)
		s := 1 / math.Sqrt(variance+WSEpsilon)
		inv[j], scale[j], shift[j] = float32(s), float32(s), float32(-mean*s)
	}
	return scale, zero, shift
}

// StandardizeBackwardHWIO is the backward of StandardizeHWIOInto(ws, w, inv):
// from gs, the gradient with respect to ws, it writes the gradient with
// respect to w, dw = inv * (gs - mean(gs) - ws * mean(gs*ws)) per output
// channel (overwritten, or added to when accumulate is set). All in
// [KH,KW,I,O].
func StandardizeBackwardHWIO(ws *Tensor, inv []float32, gs, dw *Tensor, accumulate bool) {
	kh, kw, ci, co := dims4(ws)
	if !SameShape(gs.Shape, ws.Shape) || !SameShape(dw.Shape, ws.Shape) || len(inv) != co {
		panic(fmt.Sprintf("nn: StandardizeBackwardHWIO: ws %v, gs %v, dw %v, inv %d", ws.Shape, gs.Shape, dw.Shape, len(inv)))
	}
	rows := kh * kw * ci
	sg, sgw := colSums(gs.Data, ws.Data, rows, co)
	coef := make([]float32, 3*co)
	a, b, c := coef[:co], coef[co:2*co], coef[2*co:]
	for j := range a {
		s := float64(inv[j])
		a[j], b[j], c[j] = float32(s), float32(-s*sgw[j]/float64(rows)), float32(-s*sg[j]/float64(rows))
	}
	rowsAffine(dw.Data, gs.Data, ws.Data, a, b, c, rows, co, accumulate)
}
