// Package topk ranks scores the one way bitrun ranks them everywhere (eval,
// predict, serve's predict and its classification extension): highest
// first, ties to the lower index, NaN last.
package topk

import "sort"

// Indices returns the indices of the k highest scores, best first; ties go
// to the lower index and NaN scores rank last. It keeps a sorted window of
// the best k when k is small against len(scores).
func Indices(scores []float32, k int) []int {
	k = min(k, len(scores))
	if k <= 0 {
		return nil
	}
	idx := make([]int, len(scores))
	for i := range idx {
		idx[i] = i
	}
	less := func(a, b int) bool { // a ranks before b
		sa, sb := scores[a], scores[b]
		na, nb := isNaN(sa), isNaN(sb)
		switch {
		case na != nb:
			return nb
		case !na && sa != sb:
			return sa > sb
		}
		return a < b
	}
	if k*8 < len(scores) {
		// Partial selection: keep a sorted window of the best k.
		best := make([]int, 0, k+1)
		for _, i := range idx {
			if len(best) == k && !less(i, best[k-1]) {
				continue
			}
			pos := sort.Search(len(best), func(j int) bool { return less(i, best[j]) })
			best = append(best, 0)
			copy(best[pos+1:], best[pos:])
			best[pos] = i
			if len(best) > k {
				best = best[:k]
			}
		}
		return best
	}
	sort.SliceStable(idx, func(a, b int) bool { return less(idx[a], idx[b]) })
	return idx[:k]
}

func isNaN(f float32) bool { return f != f }
