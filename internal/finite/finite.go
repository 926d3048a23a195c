// Package finite finds NaN and infinite values in float32 data: the one scan
// behind every "non-finite" check (checkpoint weights, logits, model outputs).
package finite

import "math"

// Index returns the index of the first NaN or ±Inf in v, or -1 when every
// value is finite.
func Index(v []float32) int {
	for i, x := range v {
		// x != x is NaN; beyond ±MaxFloat32 is ±Inf.
		if x != x || x > math.MaxFloat32 || x < -math.MaxFloat32 {
			return i
		}
	}
	return -1
}
