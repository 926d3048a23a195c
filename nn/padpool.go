package nn

import "fmt"

// PadMaxPoolInto is MaxPoolInto(dst, ZeroPadInto(x, pad), k, stride) without
// the padded copy: each output is the first maximum, in row-major scan order
// of the padded window, of the window's pixels and its padding zeros. arg
// (len dst) records where each output came from, for PadMaxPoolBackward: the
// offset of the pixel within its image plane, or -1 for a padding zero.
func PadMaxPoolInto(dst, x *Tensor, pad, k, stride int, arg []int32) {
	n, c, h, w := dims4(x)
	oh, ow := ConvOutSize(h, k, stride, pad), ConvOutSize(w, k, stride, pad)
	if !SameShape(dst.Shape, []int{n, c, oh, ow}) || len(arg) != dst.Len() || pad < 0 || k < 1 || stride < 1 || h*w >= 1<<31 {
		panic(fmt.Sprintf("nn: PadMaxPoolInto: x %v, pad %d, k %d, stride %d, dst %v, arg %d", x.Shape, pad, k, stride, dst.Shape, len(arg)))
	}
	parallelChunks(n*c, max(1, 4096/max(h*w, 1)), func(lo, hi int) {
		for nc := lo; nc < hi; nc++ {
			src := x.Data[nc*h*w : (nc+1)*h*w]
			out := dst.Data[nc*oh*ow : (nc+1)*oh*ow]
			idx := arg[nc*oh*ow : (nc+1)*oh*ow]
			for y := 0; y < oh; y++ {
				y0 := y*stride - pad
				for xo := 0; xo < ow; xo++ {
					x0 := xo*stride - pad
					if y0 >= 0 && y0+k <= h && x0 >= 0 && x0+k <= w {
						// Inside the image: no padding zero takes part. Take
						// the maximum without branches, then its first place
						// in scan order (one unpredictable branch, not one
						// per new maximum).
						best := src[y0*w+x0]
						for ky := 0; ky < k; ky++ {
							for _, v := range src[(y0+ky)*w+x0:][:k] {
								best = max(best, v)
							}
						}
						at := firstIndex(src, w, k, y0, x0, best)
						out[y*ow+xo], idx[y*ow+xo] = src[at], int32(at)
						continue
					}
					best, at := float32(0), int32(-1)
					first := true
					for ky := 0; ky < k; ky++ {
						iy := y0 + ky
						for kx := 0; kx < k; kx++ {
							ix := x0 + kx
							v, i := float32(0), int32(-1)
							if iy >= 0 && iy < h && ix >= 0 && ix < w {
								i = int32(iy*w + ix)
								v = src[i]
							}
							if first || v > best {
								best, at, first = v, i, false
							}
						}
					}
					out[y*ow+xo], idx[y*ow+xo] = best, at
				}
			}
		}
	})
}

// PadMaxPoolBackward is the backward of PadMaxPoolInto: it writes into dx
// [N,C,H,W] the sum of the output gradients dy of the windows whose maximum
// each pixel was (gradients that went to a padding zero are dropped).
func PadMaxPoolBackward(dy *Tensor, arg []int32, dx *Tensor) {
	n, c, h, w := dims4(dx)
	_, dc, oh, ow := dims4(dy)
	if dy.Shape[0] != n || dc != c || len(arg) != dy.Len() {
		panic(fmt.Sprintf("nn: PadMaxPoolBackward: dy %v, arg %d, dx %v", dy.Shape, len(arg), dx.Shape))
	}
	parallelChunks(n*c, max(1, 4096/max(h*w, 1)), func(lo, hi int) {
		for nc := lo; nc < hi; nc++ {
			out := dx.Data[nc*h*w : (nc+1)*h*w]
			clear(out)
			d := dy.Data[nc*oh*ow : (nc+1)*oh*ow]
			for j, i := range arg[nc*oh*ow : (nc+1)*oh*ow] {
				if i >= 0 {
					out[i] += d[j]
				}
			}
		}
	})
}

// firstIndex is the offset in plane (rows w long) of the first value equal
// to m in the k×k window at (y0, x0), scanned row by row; when there is none
// (m is NaN) it is the first maximum as v > best finds it.
func firstIndex(plane []float32, w, k, y0, x0 int, m float32) int {
	for ky := 0; ky < k; ky++ {
		row := plane[(y0+ky)*w+x0:][:k]
		for kx, v := range row {
			if v == m {
				return (y0+ky)*w + x0 + kx
			}
		}
	}
	return maxPoolArg(plane, w, k, y0, x0)
}
