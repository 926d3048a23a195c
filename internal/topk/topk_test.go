package topk

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// Indices orders highest first, ties to the lower index, NaN last, and its
// partial selection (small k) gives the head of the full ranking.
func TestIndices(t *testing.T) {
	nan := float32(math.NaN())
	for _, tc := range []struct {
		scores []float32
		k      int
		want   []int
	}{
		{[]float32{0.1, 0.5, 0.3}, 1, []int{1}},
		{[]float32{0.1, 0.5, 0.3}, 2, []int{1, 2}},
		{[]float32{0.1, 0.5, 0.3}, 5, []int{1, 2, 0}},
		{[]float32{2, 2, 1, 2}, 2, []int{0, 1}}, // ties: lower index first
		{[]float32{nan, 1, 0}, 3, []int{1, 2, 0}},
		{[]float32{1, nan, 3, 3, -1}, 5, []int{2, 3, 0, 4, 1}},
		{[]float32{1}, 0, nil},
		// long enough to take the partial-selection path
		{[]float32{0, 9, 1, 8, 2, 7, 3, 6, 4, 5, 0, 0, 0, 0, 0, 0, 0, 9}, 2, []int{1, 17}},
	} {
		if got := Indices(tc.scores, tc.k); !slices.Equal(got, tc.want) || (tc.want == nil) != (got == nil) {
			t.Errorf("Indices(%v, %d) = %v, want %v", tc.scores, tc.k, got, tc.want)
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	scores := make([]float32, 1000)
	for i := range scores {
		scores[i] = float32(r.IntN(50)) // many ties
		if i%97 == 0 {
			scores[i] = nan
		}
	}
	full := Indices(scores, len(scores))
	for _, k := range []int{1, 5, 100, 124, 125, 999} {
		if got := Indices(scores, k); !slices.Equal(got, full[:k]) {
			t.Errorf("k=%d: %v, want the head of the full ranking %v", k, got[:min(k, 8)], full[:min(k, 8)])
		}
	}
}
