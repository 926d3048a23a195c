package nn

import "fmt"

// PadMaxPoolInto writes into dst the k×k, stride max pool of x padded by pad
// zeros on each spatial side, without a padded copy: each output is the maximum of its window's pixels and
// padding zeros (a NaN in the window gives NaN). The maximum is taken in two
// passes per output row, down the window's rows then across its columns,
// with no data-dependent branches.
func PadMaxPoolInto(dst, x *Tensor, pad, k, stride int) {
	n, c, h, w := dims4(x)
	oh, ow := ConvOutSize(h, k, stride, pad), ConvOutSize(w, k, stride, pad)
	if !SameShape(dst.Shape, []int{n, c, oh, ow}) || pad < 0 || k < 1 || stride < 1 {
		panic(fmt.Sprintf("nn: PadMaxPoolInto: x %v, pad %d, k %d, stride %d, dst %v", x.Shape, pad, k, stride, dst.Shape))
	}
	parallelChunks(n*c, max(1, 4096/max(h*w, 1)), func(lo, hi int) {
		vm := make([]float32, w) // the window rows' maximum, per input column
		for nc := lo; nc < hi; nc++ {
			src := x.Data[nc*h*w : (nc+1)*h*w]
			out := dst.Data[nc*oh*ow : (nc+1)*oh*ow]
			for y := 0; y < oh; y++ {
				y0 := y*stride - pad
				first := true
				padded := false
				for ky := 0; ky < k; ky++ {
					iy := y0 + ky
					if iy < 0 || iy >= h {
						padded = true
						continue
					}
					row := src[iy*w : (iy+1)*w]
					if first {
						copy(vm, row)
						first = false
						continue
					}
					for i, v := range row {
						vm[i] = max(vm[i], v)
					}
				}
				if first { // every window row is padding
					clear(vm)
				} else if padded {
					for i, v := range vm {
						vm[i] = max(v, 0)
					}
				}
				o := out[y*ow : (y+1)*ow]
				for xo := range o {
					x0 := xo*stride - pad
					m := float32(0)
					switch lo, hi := max(x0, 0), min(x0+k, w); {
					case lo >= hi:
					case lo == x0 && hi == x0+k: // no padding column
						m = vm[lo]
						for _, v := range vm[lo+1 : hi] {
							m = max(m, v)
						}
					default:
						for _, v := range vm[lo:hi] {
							m = max(m, v)
						}
					}
					o[xo] = m
				}
			}
		}
	})
}

// PadMaxPoolBackward is the backward of PadMaxPoolInto(y, x, pad, k, stride):
// it writes into dx [N,C,H,W] the sum of the output gradients dy of the
// windows whose maximum each pixel was. A window's maximum is its first
// value equal to y in row-major scan order of the padded window; a gradient
// whose maximum was a padding zero (or NaN) is dropped.
func PadMaxPoolBackward(x, y, dy *Tensor, pad, k, stride int, dx *Tensor) {
	n, c, h, w := dims4(x)
	oh, ow := ConvOutSize(h, k, stride, pad), ConvOutSize(w, k, stride, pad)
	if !SameShape(y.Shape, []int{n, c, oh, ow}) || !SameShape(dy.Shape, y.Shape) || !SameShape(dx.Shape, x.Shape) {
		panic(fmt.Sprintf("nn: PadMaxPoolBackward: x %v, y %v, dy %v, dx %v", x.Shape, y.Shape, dy.Shape, dx.Shape))
	}
	parallelChunks(n*c, max(1, 4096/max(h*w, 1)), func(lo, hi int) {
		for nc := lo; nc < hi; nc++ {
			src := x.Data[nc*h*w : (nc+1)*h*w]
			out := dx.Data[nc*h*w : (nc+1)*h*w]
			clear(out)
			ys := y.Data[nc*oh*ow : (nc+1)*oh*ow]
			d := dy.Data[nc*oh*ow : (nc+1)*oh*ow]
			for yo := 0; yo < oh; yo++ {
				for xo := 0; xo < ow; xo++ {
					if i := windowArg(src, h, w, k, yo*stride-pad, xo*stride-pad, ys[yo*ow+xo]); i >= 0 {
						out[i] += d[yo*ow+xo]
					}
				}
			}
		}
	})
}

// windowArg is the offset in plane (h×w) of the first value equal to m in
// the k×k window at (y0, x0) of the zero-padded plane, scanned row by row,
// or -1 when that is a padding zero or nothing equals m.
func windowArg(plane []float32, h, w, k, y0, x0 int, m float32) int {
	if y0 >= 0 && y0+k <= h && x0 >= 0 && x0+k <= w { // no padding
		for ky := 0; ky < k; ky++ {
			at := (y0+ky)*w + x0
			for kx, v := range plane[at : at+k] {
				if v == m {
					return at + kx
				}
			}
		}
		return -1
	}
	for ky := 0; ky < k; ky++ {
		iy := y0 + ky
		for kx := 0; kx < k; kx++ {
			ix := x0 + kx
			if iy < 0 || iy >= h || ix < 0 || ix >= w {
				if m == 0 {
					return -1
				}
				continue
			}
			if plane[iy*w+ix] == m {
				return iy*w + ix
			}
		}
	}
	return -1
}
