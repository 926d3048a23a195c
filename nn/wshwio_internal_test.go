package nn

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// StandardizePrepareHWIO gives exactly what StandardizeHWIOInto then
// PrepareHWIO give: the standardised kernel, 1/std, and both packed
// operands, for stride-1, strided and 1x1 kernels.
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
			got, ginv := StandardizePrepareHWIO(w, tc.stride, tc.pad, true, &a2)
			switch {
			case !slices.Equal(got.W.Data, want.W.Data):
				t.Fatal("standardised kernels differ")
			case !slices.Equal(ginv, inv):
				t.Fatal("inv differs")
			case !slices.Equal(got.fwd.data, want.fwd.data):
				t.Fatal("forward panels differ")
			case !slices.Equal(got.dx.data, want.dx.data):
				t.Fatal("input-gradient panels differ")
			}
		})
	}
}
