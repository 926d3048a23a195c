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
	if got := Indices([]float32{1, nan, 3, 3, -1}, 5); !slices.Equal(got, []int{2, 3, 0, 4, 1}) {
		t.Errorf("ranking %v, want [2 3 0 4 1]", got)
	}
	if got := Indices([]float32{1, 2}, 0); got != nil {
		t.Errorf("k=0: %v, want nil", got)
	}
	if got := Indices([]float32{1, 2}, 5); !slices.Equal(got, []int{1, 0}) {
		t.Errorf("k beyond the scores: %v", got)
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
