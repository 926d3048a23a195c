package nn

import (
	"fmt"
	"math"
)

// Weight standardisation straight from and to the checkpoint layout. A
// training step standardises every kernel after each update and turns the
// gradient of every standardised kernel back into the checkpoint layout; doing
// the layout change inside those passes (blocks of wsBlock output channels,
// one core each) saves two serial, cache-hostile transposes per kernel.

// wsBlock is the number of output channels a pass handles together: the
// HWIO rows are read wsBlock contiguous values at a time.
const wsBlock = 16

// StandardizeHWIOInto writes the weight-standardised kernel of w [KH,KW,I,O]
// (checkpoint layout) into dst [O,I,KH,KW] (the engine's layout) and
// 1/sqrt(var+WSEpsilon) of each output channel into inv (len O). It gives
// the values StandardizeWeightInto(dst, HWIOToOIHW(w), inv) gives, up to the
// order of the float64 sums.
func StandardizeHWIOInto(dst, w *Tensor, inv []float32) {
	kh, kw, ci, co := dims4(w)
	if !SameShape(dst.Shape, []int{co, ci, kh, kw}) || len(inv) != co {
		panic(fmt.Sprintf("nn: StandardizeHWIOInto: w %v, dst %v, inv %d", w.Shape, dst.Shape, len(inv)))
	}
	rows, khw := kh*kw*ci, kh*kw
	blocks := (co + wsBlock - 1) / wsBlock
	ParallelFor(blocks, func(bi int) {
		o0 := bi * wsBlock
		nb := min(wsBlock, co-o0)
		var sum, ssq [wsBlock]float64
		for r := 0; r < rows; r++ {
			src := w.Data[r*co+o0:][:nb]
			for j, v := range src {
				sum[j] += float64(v)
			}
		}
		var mean [wsBlock]float64
		for j := 0; j < nb; j++ {
			mean[j] = sum[j] / float64(rows)
		}
		for r := 0; r < rows; r++ {
			src := w.Data[r*co+o0:][:nb]
			for j, v := range src {
				d := float64(v) - mean[j]
				ssq[j] += d * d
			}
		}
		var s [wsBlock]float64
		for j := 0; j < nb; j++ {
			s[j] = 1 / math.Sqrt(ssq[j]/float64(rows)+WSEpsilon)
			inv[o0+j] = float32(s[j])
		}
		// HWIO row r = (y*kw+x)*ci+i goes to OIHW column i*khw + y*kw+x.
		for yx := 0; yx < khw; yx++ {
			for i := 0; i < ci; i++ {
				src := w.Data[(yx*ci+i)*co+o0:][:nb]
				col := i*khw + yx
				for j, v := range src {
					dst.Data[(o0+j)*rows+col] = float32((float64(v) - mean[j]) * s[j])
				}
			}
		}
	})
}

// StandardizeBackwardHWIO is StandardizeWeightBackward writing the raw
// kernel's gradient in the checkpoint layout: from ws [O,I,KH,KW] and its
// inv (from StandardizeHWIOInto) and gs, the gradient with respect to ws, it
// writes dw [KH,KW,I,O] = inv * (gs - mean(gs) - ws * mean(gs*ws)) per output
// channel (overwritten, or added when accumulate is set).
func StandardizeBackwardHWIO(ws *Tensor, inv []float32, gs, dw *Tensor, accumulate bool) {
	co, ci, kh, kw := dims4(ws)
	if !SameShape(gs.Shape, ws.Shape) || !SameShape(dw.Shape, []int{kh, kw, ci, co}) || len(inv) != co {
		panic(fmt.Sprintf("nn: StandardizeBackwardHWIO: ws %v, gs %v, dw %v, inv %d", ws.Shape, gs.Shape, dw.Shape, len(inv)))
	}
	per, khw := ci*kh*kw, kh*kw
	blocks := (co + wsBlock - 1) / wsBlock
	ParallelFor(blocks, func(bi int) {
		o0 := bi * wsBlock
		nb := min(wsBlock, co-o0)
		var mg, mgw, s [wsBlock]float64
		for j := 0; j < nb; j++ {
			o := o0 + j
			wr, gr := ws.Data[o*per:(o+1)*per], gs.Data[o*per:(o+1)*per]
			var sg, sgw float64
			for q, g := range gr {
				sg += float64(g)
				sgw += float64(g) * float64(wr[q])
			}
			mg[j], mgw[j], s[j] = sg/float64(per), sgw/float64(per), float64(inv[o])
		}
		for yx := 0; yx < khw; yx++ {
			for i := 0; i < ci; i++ {
				out := dw.Data[(yx*ci+i)*co+o0:][:nb]
				col := i*khw + yx
				for j := range out {
					q := (o0+j)*per + col
					v := float32(s[j] * (float64(gs.Data[q]) - mg[j] - float64(ws.Data[q])*mgw[j]))
					if accumulate {
						out[j] += v
					} else {
						out[j] = v
					}
				}
			}
		}
	})
}
