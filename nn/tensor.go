package nn

import "fmt"

// Tensor is a dense float32 array in row-major order. Image tensors are NCHW;
// convolution kernels inside nn are OIHW (out, in, height, width).
type Tensor struct {
	Shape []int
	Data  []float32
}

// New returns a zero tensor of the given shape.
func New(shape ...int) *Tensor {
	return &Tensor{Shape: append([]int(nil), shape...), Data: make([]float32, numel(shape))}
}

// FromData wraps data (not copied) as a tensor of the given shape. It panics when
// the length does not match: that is a programmer error.
func FromData(data []float32, shape ...int) *Tensor {
	if len(data) != numel(shape) {
		panic(fmt.Sprintf("nn: FromData: %d values for shape %v", len(data), shape))
	}
	return &Tensor{Shape: append([]int(nil), shape...), Data: data}
}

// Len is the number of elements.
func (t *Tensor) Len() int { return len(t.Data) }

// Clone returns a deep copy.
func (t *Tensor) Clone() *Tensor {
	return &Tensor{Shape: append([]int(nil), t.Shape...), Data: append([]float32(nil), t.Data...)}
}

// Reshape returns a view with a new shape sharing the data.
func (t *Tensor) Reshape(shape ...int) *Tensor {
	return FromData(t.Data, shape...)
}

// String describes the shape, for error messages.
func (t *Tensor) String() string { return fmt.Sprintf("Tensor%v", t.Shape) }

// SameShape reports whether a and b have equal shapes.
func SameShape(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func numel(shape []int) int {
	n := 1
	for _, d := range shape {
		if d < 0 {
			panic(fmt.Sprintf("nn: negative dimension in %v", shape))
		}
		n *= d
	}
	return n
}

// HWIOToOIHW converts a checkpoint kernel (height, width, in, out) to the engine's
// (out, in, height, width) layout.
func HWIOToOIHW(w *Tensor) *Tensor {
	if len(w.Shape) != 4 {
		panic(fmt.Sprintf("nn: HWIOToOIHW: want 4-D, got %v", w.Shape))
	}
	kh, kw, ci, co := w.Shape[0], w.Shape[1], w.Shape[2], w.Shape[3]
	out := New(co, ci, kh, kw)
	PermuteHWIO(out.Data, w.Data, kh, kw, ci, co)
	return out
}

// PermuteHWIO writes the kernel src, kh×kw×ci×co in the checkpoint layout
// (height, width, in, out), into dst in the (out, in, height, width) layout.
// It serves any element type (the float64 gradient checks use it too).
func PermuteHWIO[E any](dst, src []E, kh, kw, ci, co int) {
	for y := 0; y < kh; y++ {
		for x := 0; x < kw; x++ {
			for i := 0; i < ci; i++ {
				row := src[((y*kw+x)*ci+i)*co:][:co]
				for o, v := range row {
					dst[((o*ci+i)*kh+y)*kw+x] = v
				}
			}
		}
	}
}
