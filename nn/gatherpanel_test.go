package nn

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestPanelGatherMatchesScalar: the gathered A panels of the im2col matrix
// (the weight gradient's left operand) hold exactly the values the scalar
// packers write, over random kernels, strides, paddings, channel orders,
// partial panels and column ranges that start and end mid-row and
// mid-image.
func TestPanelGatherMatchesScalar(t *testing.T) {
	if !hasGather {
		t.Skip("no AVX-512 gathers on this machine: the scalar packers are the only path")
	}
	r := rand.New(rand.NewPCG(41, 42))
	for it := 0; it < 300; it++ {
		k := []int{1, 3, 3, 7}[r.IntN(4)]
		stride, pad := 1+r.IntN(2), r.IntN(k/2+2)
		if k == 1 && stride == 1 && pad == 0 {
			pad = 1 // the 1x1 stride-1 packer is not a gather path
		}
		n, c := 1+r.IntN(3), 1+r.IntN(13)
		h, w := k+r.IntN(9), k+r.IntN(9)
		cp := numberedPacker(r, n, c, h, w, k, stride, pad)
		rows, cols := k*k*c, n*cp.pix
		i0 := r.IntN(rows)
		mb := 1 + r.IntN(rows-i0)
		p0 := r.IntN(cols)
		kb := 1 + r.IntN(min(kcMax, cols-p0))
		pr := patchRows{cp}
		size := (mb + mr - 1) / mr * mr * kb
		got := make([]float32, size+64)
		for i := range got {
			got[i] = -1
		}
		pr.panels(i0, mb, p0, kb, got)
		hasGather = false
		want := make([]float32, size+64)
		for i := range want {
			want[i] = -1
		}
		pr.panels(i0, mb, p0, kb, want)
		hasGather = true
		if !slices.Equal(got, want) {
			for i := range got {
				if got[i] != want[i] {
					t.Fatalf("k%d s%d p%d n%d c%d %dx%d hwc %v rows %d+%d cols %d+%d: value %d = %v, scalar %v",
						k, stride, pad, n, c, h, w, cp.hwc, i0, mb, p0, kb, i, got[i], want[i])
				}
			}
		}
	}
}

// TestPackBMatchesScalar: the right operand's panels (packAny's gathers,
// packRow's masked loads, the 1x1 copies) hold exactly the values the
// scalar packers write, over random kernels, strides, paddings, both row
// orders, images from smaller than the kernel to 40 pixels wide and column
// ranges that start and end mid-row and mid-image.
func TestPackBMatchesScalar(t *testing.T) {
	if !hasGather {
		t.Skip("no AVX-512 gathers on this machine: the scalar packers are the only path")
	}
	r := rand.New(rand.NewPCG(43, 44))
	for it := 0; it < 400; it++ {
		k := []int{1, 1, 3, 3, 5, 7}[r.IntN(6)]
		stride, pad := 1+r.IntN(3), r.IntN(k/2+2)
		n, c := 1+r.IntN(3), 1+r.IntN(9)
		h, w := max(1, k-2*pad)+r.IntN(12), max(1, k-2*pad)+r.IntN(40) // down to the padded kernel's size
		cp := numberedPacker(r, n, c, h, w, k, stride, pad)
		rows, cols := k*k*c, n*cp.pix
		p0 := r.IntN(rows)
		kb := 1 + r.IntN(min(kcMax, rows-p0))
		j0 := r.IntN(cols)
		nb := 1 + r.IntN(cols-j0)
		size := (nb + nr - 1) / nr * nr * kb
		got, want := make([]float32, size), make([]float32, size)
		cp.packB(p0, kb, j0, nb, got)
		hasGather, hasAVX512 = false, false
		cp.packB(p0, kb, j0, nb, want)
		hasGather, hasAVX512 = true, true
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("k%d s%d p%d n%d c%d %dx%d rows %d+%d cols %d+%d: value %d = %v, scalar %v",
					k, stride, pad, n, c, h, w, p0, kb, j0, nb, i, got[i], want[i])
			}
		}
	}
}

// numberedPacker is a packer over n images [c,h,w] whose values number
// their positions from 1 (so a value out of place shows), a k×k kernel,
// and a row order drawn from r.
func numberedPacker(r *rand.Rand, n, c, h, w, k, stride, pad int) convPacker {
	x := make([]float32, n*c*h*w)
	for i := range x {
		x[i] = float32(i + 1)
	}
	cp := newConvPacker(x, c, h, w, k, k, stride, pad, ConvOutSize(h, k, stride, pad), ConvOutSize(w, k, stride, pad))
	cp.hwc = r.IntN(2) == 0
	return cp
}
