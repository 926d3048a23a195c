package nn

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// StandardizePrepareHWIO gives exactly what StandardizeHWIOInto then
// PrepareHWIO give: 1/std and both packed operands of the standardised
// kernel, for stride-1, strided and 1x1 kernels, channel counts on and off
// the panel height; and its WS reproduces the standardised kernel.
func TestStandardizePrepareHWIO(t *testing.T) {
	r := rand.New(rand.NewPCG(31, 32))
	for _, tc := range []struct {
		shape       []int
		stride, pad int
	}{
		{[]int{3, 3, 20, 26}, 1, 1},
		{[]int{3, 3, 20, 26}, 2, 1},
		{[]int{1, 1, 40, 70}, 1, 0},
		{[]int{1, 1, 40, 70}, 2, 0},
		{[]int{7, 7, 3, 18}, 2, 3},
		{[]int{3, 3, 64, 32}, 1, 1},
		{[]int{3, 3, 64, 32}, 2, 1},
		{[]int{1, 1, 13, 16}, 1, 0},
		{[]int{3, 3, 40, 1100}, 1, 1}, // several scratch groups
		{[]int{3, 3, 40, 1100}, 2, 1},
	} {
		t.Run(fmt.Sprint(tc.shape, tc.stride), func(t *testing.T) {
			w := New(tc.shape...)
			for i := range w.Data {
				w.Data[i] = float32(r.NormFloat64()*0.2 + 0.03)
			}
			var a1, a2 Arena
			ws, inv := New(tc.shape...), make([]float32, tc.shape[3])
			StandardizeHWIOInto(ws, w, inv)
			want := PrepareHWIO(ws, tc.stride, tc.pad, true, &a1)
			got := StandardizePrepareHWIO(w, tc.stride, tc.pad, true, &a2)
			ws2 := New(tc.shape...)
			co := tc.shape[3]
			for r := 0; r < ws2.Len()/co; r++ {
				src := w.Data[r*co:][:co]
				colAffine(ws2.Data[r*co:][:co], src, src, got.WS.Scale, make([]float32, co), got.WS.Shift, false)
			}
			switch {
			case got.W != w:
				t.Fatal("W is not the kernel given")
			case !slices.Equal(ws2.Data, ws.Data):
				t.Fatal("WS does not give the standardised kernel")
			case !slices.Equal(got.WS.Scale, inv):
				t.Fatal("inv differs")
			case !slices.Equal(got.fwd.data, want.fwd.data):
				t.Fatal("forward panels differ")
			case !slices.Equal(got.dx.data, want.dx.data):
				t.Fatal("input-gradient panels differ")
			}
		})
	}
}
