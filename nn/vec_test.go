package nn

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestVec checks the element-wise loops (AVX2 on amd64, Go elsewhere) for
// every length 0..80 (vector bulk plus tail) against float64 references:
// sums within 1e-12 relative of Σ|terms|, the fused scale+shift within one
// float32 rounding of the exact value, ReLU and add exactly. ReLU keeps NaN.
func TestVec(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	for n := 0; n <= 80; n++ {
		s := randSlice(r, n)
		var sum, abs float64
		for _, v := range s {
			sum += float64(v)
			abs += math.Abs(float64(v))
		}
		if got := sumF64(s); math.Abs(got-sum) > 1e-12*abs {
			t.Fatalf("n=%d: sumF64 = %v, want %v", n, got, sum)
		}
		mean := 0.3
		var sq float64
		for _, v := range s {
			sq += (float64(v) - mean) * (float64(v) - mean)
		}
		if got := sumSqDev(s, mean); math.Abs(got-sq) > 1e-12*sq {
			t.Fatalf("n=%d: sumSqDev = %v, want %v", n, got, sq)
		}
		for _, relu := range []bool{false, true} {
			d := make([]float32, n)
			scaleShift(d, s, 1.7, -0.2, relu)
			for i, v := range s {
				want := float64(v)*1.7 - 0.2
				if relu {
					want = math.Max(want, 0)
				}
				if diff := math.Abs(float64(d[i]) - want); diff > 2e-7*(math.Abs(want)+0.2) {
					t.Fatalf("n=%d relu=%v: scaleShift[%d] = %v, want %v", n, relu, i, d[i], want)
				}
			}
		}
		a, b := append([]float32(nil), s...), randSlice(r, n)
		addSlice(a, b)
		relu := append([]float32(nil), s...)
		if n > 0 {
			relu[n-1] = float32(math.NaN())
		}
		reluSlice(relu)
		for i := range s {
			if a[i] != s[i]+b[i] {
				t.Fatalf("n=%d: add[%d] = %v, want %v", n, i, a[i], s[i]+b[i])
			}
			if i == n-1 {
				if !math.IsNaN(float64(relu[i])) {
					t.Fatalf("n=%d: relu turned NaN into %v", n, relu[i])
				}
			} else if want := max(s[i], 0); relu[i] != want {
				t.Fatalf("n=%d: relu[%d] = %v, want %v", n, i, relu[i], want)
			}
		}
	}
}

// TestGNVec checks the GroupNorm backward loops (AVX-512 on amd64 CPUs that
// have it, Go elsewhere) for every length 0..80, with and without the ReLU
// mask, against float64 references.
func TestGNVec(t *testing.T) {
	r := rand.New(rand.NewPCG(23, 24))
	for n := 0; n <= 80; n++ {
		dy, x, y := randSlice(r, n), randSlice(r, n), randSlice(r, n)
		const mu = 0.25
		for _, ys := range [][]float32{nil, y} {
			var sdy, sdyx, abs float64
			for j := range dy {
				if ys != nil && ys[j] <= 0 {
					continue
				}
				sdy += float64(dy[j])
				sdyx += float64(dy[j]) * (float64(x[j]) - mu)
				abs += math.Abs(float64(dy[j])) * (1 + math.Abs(float64(x[j])))
			}
			gdy, gdyx := gnSums(dy, x, ys, mu)
			if math.Abs(gdy-sdy) > 1e-12*abs || math.Abs(gdyx-sdyx) > 1e-12*abs {
				t.Fatalf("n=%d relu=%v: gnSums = %v, %v, want %v, %v", n, ys != nil, gdy, gdyx, sdy, sdyx)
			}
			out := make([]float32, n)
			const a, b, c = 1.5, -0.75, 0.125
			gnApply(out, dy, x, ys, mu, a, b, c)
			for j := range out {
				want := b*(float64(x[j])-mu) + c
				if ys == nil || ys[j] > 0 {
					want += a * float64(dy[j])
				}
				if math.Abs(float64(out[j])-want) > 1e-6*(1+math.Abs(want)) {
					t.Fatalf("n=%d relu=%v: gnApply[%d] = %v, want %v", n, ys != nil, j, out[j], want)
				}
			}
		}
	}
}

// TestTranspose16 checks the 16-row transpose (AVX-512 blocks plus a Go
// tail) for widths on and off the 16-column blocks.
func TestTranspose16(t *testing.T) {
	r := rand.New(rand.NewPCG(25, 26))
	for _, n := range []int{0, 1, 15, 16, 17, 40, 64} {
		ld := n + 3
		src := randSlice(r, 16*ld)
		dst := make([]float32, 16*n)
		transpose16(dst, src, ld, n)
		for j := 0; j < 16; j++ {
			for p := 0; p < n; p++ {
				if dst[p*16+j] != src[j*ld+p] {
					t.Fatalf("n=%d: dst[%d*16+%d] = %v, want %v", n, p, j, dst[p*16+j], src[j*ld+p])
				}
			}
		}
	}
}
