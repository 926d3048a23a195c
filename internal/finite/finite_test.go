package finite

import (
	"math"
	"testing"
)

func TestIndex(t *testing.T) {
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	for _, tc := range []struct {
		v    []float32
		want int
	}{
		{nil, -1},
		{[]float32{0, -1, math.MaxFloat32, -math.MaxFloat32, math.SmallestNonzeroFloat32}, -1},
		{[]float32{1, nan, inf}, 1},
		{[]float32{1, 2, -inf}, 2},
		{[]float32{inf}, 0},
	} {
		if got := Index(tc.v); got != tc.want {
			t.Errorf("Index(%v) = %d, want %d", tc.v, got, tc.want)
		}
	}
}
