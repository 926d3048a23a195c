package nn_test

// Gradient checks. Method: every op's analytic float32 backward is compared
// with central finite differences (eps 1e-6) of an independent float64
// reference forward (internal/gradcheck) on the same random inputs, with the
// scalar loss L = Σ r ⊙ op(inputs) for a random upstream r (so dy = r). The
// acceptance bound is relative error ‖analytic − numeric‖₂ / max(‖·‖₂) < 1e-3.

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/bitrun/bitrun/internal/gradcheck"
	"github.com/bitrun/bitrun/nn"
)

const (
	fdEps  = 1e-6
	maxRel = 1e-3
)

func randT(rng *rand.Rand, scale float32, shape ...int) *nn.Tensor {
	t := nn.New(shape...)
	for i := range t.Data {
		t.Data[i] = scale * float32(rng.NormFloat64())
	}
	return t
}

func f64(t []float32) []float64 {
	out := make([]float64, len(t))
	for i, v := range t {
		out[i] = float64(v)
	}
	return out
}

// numeric differentiates f with respect to every element of vals.
func numeric(vals []float64, f func() float64) []float64 {
	out := make([]float64, len(vals))
	for i := range vals {
		out[i] = gradcheck.Central(f, &vals[i], fdEps)
	}
	return out
}

func checkGrad(t *testing.T, what string, analytic []float32, num []float64) {
	t.Helper()
	if len(analytic) != len(num) {
		t.Fatalf("%s: %d analytic values, %d numeric", what, len(analytic), len(num))
	}
	e := gradcheck.RelErr(analytic, num)
	if e >= maxRel || math.IsNaN(e) {
		t.Errorf("%s: relative error %.3g >= %g", what, e, maxRel)
	}
	var norm float64
	for _, v := range num {
		norm += v * v
	}
	if norm == 0 {
		t.Errorf("%s: numeric gradient is all zero: the check tests nothing", what)
	}
}

func checkClose(t *testing.T, what string, got []float32, want []float64, tol float64) {
	t.Helper()
	for i := range want {
		if d := math.Abs(float64(got[i]) - want[i]); d > tol*(1+math.Abs(want[i])) {
			t.Fatalf("%s[%d] = %g, want %g", what, i, got[i], want[i])
		}
	}
}

// convCase is a convolution of n images of c channels, h×w pixels, to o
// channels with a k×k kernel.
type convCase struct{ n, c, h, w, o, k, stride, pad int }

func (tc convCase) String() string {
	return fmt.Sprintf("n%dc%do%dk%ds%dp%d", tc.n, tc.c, tc.o, tc.k, tc.stride, tc.pad)
}

// draw returns an input, an HWIO kernel and an output gradient for tc,
// drawn from rng in that order.
func (tc convCase) draw(rng *rand.Rand) (x, w, r *nn.Tensor) {
	x = randT(rng, 1, tc.n, tc.c, tc.h, tc.w)
	w = randT(rng, 0.5, tc.k, tc.k, tc.c, tc.o)
	oh, ow := nn.ConvOutSize(tc.h, tc.k, tc.stride, tc.pad), nn.ConvOutSize(tc.w, tc.k, tc.stride, tc.pad)
	return x, w, randT(rng, 1, tc.n, tc.o, oh, ow)
}

func TestConvHWIOGrad(t *testing.T) {
	cases := []convCase{
		{2, 3, 7, 6, 4, 3, 1, 1},
		{2, 3, 8, 8, 4, 3, 2, 1},
		{2, 5, 5, 5, 3, 1, 1, 0},
		{2, 5, 6, 6, 3, 1, 2, 0},
		{1, 3, 11, 11, 2, 7, 2, 3}, // the root conv
		{1, 2, 3, 1, 2, 7, 1, 3},   // one pixel wide: whole output runs in the padding (the scalar dW packer panicked)
	}
	for _, tc := range cases {
		t.Run(tc.String(), func(t *testing.T) {
			x, w, r := tc.draw(rand.New(rand.NewPCG(1, uint64(tc.k*10+tc.stride))))
			y := nn.New(r.Shape...)
			var arena nn.Arena
			k := nn.PrepareHWIO(w, tc.stride, tc.pad, true, &arena)
			nn.ConvHWIOInto(y, x, k, tc.stride, tc.pad, &arena)
			checkClose(t, "ConvHWIOInto vs Conv2D", y.Data, f64(nn.Conv2D(x, nn.HWIOToOIHW(w), tc.stride, tc.pad).Data), 1e-5)

			dx, dw := nn.New(x.Shape...), nn.New(w.Shape...)
			nn.ConvHWIOBackward(x, k, r, tc.stride, tc.pad, dx, dw, false, &arena)

			x64, w64, r64 := gradcheck.From(x), gradcheck.From(w), f64(r.Data)
			conv := func() gradcheck.T { return gradcheck.Conv(x64, gradcheck.HWIOToOIHW(w64), tc.stride, tc.pad) }
			loss := func() float64 { return gradcheck.Dot(conv(), r64) }
			checkClose(t, "ConvHWIOInto vs reference", y.Data, conv().Data, 1e-4)
			checkGrad(t, "dx", dx.Data, numeric(x64.Data, loss))
			checkGrad(t, "dw", dw.Data, numeric(w64.Data, loss))

			// accumulate adds to what is there; dx nil skips the input gradient.
			acc := dw.Clone()
			nn.ConvHWIOBackward(x, k, r, tc.stride, tc.pad, nil, acc, true, &arena)
			for i := range acc.Data {
				if math.Abs(float64(acc.Data[i]-2*dw.Data[i])) > 1e-4*(1+math.Abs(float64(dw.Data[i]))) {
					t.Fatalf("accumulate: dw[%d] = %g, want %g", i, acc.Data[i], 2*dw.Data[i])
				}
			}
		})
	}
}

func TestStandardizeHWIOGrad(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 2))
	w := randT(rng, 0.3, 3, 3, 3, 4) // HWIO
	for i := range w.Data {
		w.Data[i] += 0.1 // a non-zero mean per channel
	}
	ws, inv := nn.New(w.Shape...), make([]float32, 4)
	nn.StandardizeHWIOInto(ws, w, inv)
	checkClose(t, "StandardizeHWIOInto vs StandardizeWeight", nn.HWIOToOIHW(ws).Data, f64(nn.StandardizeWeight(nn.HWIOToOIHW(w)).Data), 1e-6)
	r := randT(rng, 1, w.Shape...)
	dw := nn.New(w.Shape...)
	nn.StandardizeBackwardHWIO(w, nn.StandardizationHWIO(w), r, dw, false)
	w64, r64 := gradcheck.From(w), f64(nn.HWIOToOIHW(r).Data)
	loss := func() float64 { return gradcheck.Dot(gradcheck.Standardize(gradcheck.HWIOToOIHW(w64)), r64) }
	checkGrad(t, "dw", dw.Data, numeric(w64.Data, loss))
}

func TestGroupNormGrad(t *testing.T) {
	// 3x4 pixels per channel take the plain loops, 5x4 the vector ones.
	for _, hw := range [][2]int{{3, 4}, {5, 4}} {
		for _, relu := range []bool{false, true} {
			t.Run(fmt.Sprintf("%dx%d/relu=%v", hw[0], hw[1], relu), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(3, 3))
				const n, c, groups = 2, 8, 4
				h, w := hw[0], hw[1]
				x := randT(rng, 2, n, c, h, w)
				for i := range x.Data {
					x.Data[i] += 0.5
				}
				gamma, beta := randT(rng, 1, c), randT(rng, 0.5, c)
				y := nn.New(x.Shape...)
				mean, inv := make([]float32, n*groups), make([]float32, n*groups)
				var arena nn.Arena
				nn.GroupNormInto(y, x, groups, gamma.Data, beta.Data, mean, inv, relu)
				ref := nn.GroupNorm(x, groups, gamma.Data, beta.Data)
				if relu {
					nn.ReLUInPlace(ref)
				}
				checkClose(t, "GroupNormInto vs GroupNorm", y.Data, f64(ref.Data), 1e-5)

				r := randT(rng, 1, x.Shape...)
				dx, dg, db := nn.New(x.Shape...), make([]float32, c), make([]float32, c)
				var yy *nn.Tensor
				if relu {
					yy = y
				}
				nn.GroupNormBackward(x, yy, groups, gamma.Data, mean, inv, r, dx, dg, db, false, &arena)

				x64, g64, b64, r64 := gradcheck.From(x), f64(gamma.Data), f64(beta.Data), f64(r.Data)
				loss := func() float64 {
					o := gradcheck.GroupNorm(x64, groups, g64, b64)
					if relu {
						o = gradcheck.ReLU(o)
					}
					return gradcheck.Dot(o, r64)
				}
				checkGrad(t, "dx", dx.Data, numeric(x64.Data, loss))
				checkGrad(t, "dgamma", dg, numeric(g64, loss))
				checkGrad(t, "dbeta", db, numeric(b64, loss))
			})
		}
	}
}

func TestReLUGrad(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	x := randT(rng, 1, 2, 3, 4, 4)
	y := nn.ReLUInPlace(x.Clone())
	r := randT(rng, 1, x.Shape...)
	dx := nn.New(x.Shape...)
	nn.ReLUBackward(y, r, dx)
	x64, r64 := gradcheck.From(x), f64(r.Data)
	checkGrad(t, "dx", dx.Data, numeric(x64.Data, func() float64 { return gradcheck.Dot(gradcheck.ReLU(x64), r64) }))
}

// TestRootPadPoolGrad checks the fused zero pad and max pool of the BiT root
// (pad 1, then 3×3 stride-2 pool; the padding zeros win where the conv
// output is negative).
func TestRootPadPoolGrad(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	x := randT(rng, 1, 2, 3, 8, 8)
	y := nn.New(2, 3, 4, 4)
	nn.PadMaxPoolInto(y, x, 1, 3, 2)
	x64 := gradcheck.From(x)
	pool := func() gradcheck.T { return gradcheck.MaxPool(gradcheck.ZeroPad(x64, 1), 3, 2) }
	checkClose(t, "PadMaxPoolInto vs reference", y.Data, pool().Data, 0)
	r := randT(rng, 1, y.Shape...)
	dx := nn.New(x.Shape...)
	nn.PadMaxPoolBackward(x, y, r, 1, 3, 2, dx)
	r64 := f64(r.Data)
	checkGrad(t, "pad+pool dx", dx.Data, numeric(x64.Data, func() float64 { return gradcheck.Dot(pool(), r64) }))
}

func TestGlobalAvgPoolLinearGrad(t *testing.T) {
	rng := rand.New(rand.NewPCG(6, 6))
	x := randT(rng, 1, 3, 5, 2, 3)
	f := nn.New(3, 5)
	nn.GlobalAvgPoolInto(f, x)
	checkClose(t, "GlobalAvgPoolInto vs GlobalAvgPool", f.Data, f64(nn.GlobalAvgPool(x).Data), 1e-6)
	w, b := randT(rng, 1, 5, 4), randT(rng, 1, 4)
	y := nn.New(3, 4)
	nn.LinearInto(y, f, w, b.Data)
	checkClose(t, "LinearInto vs Linear", y.Data, f64(nn.Linear(f, w, b.Data).Data), 1e-5)
	r := randT(rng, 1, 3, 4)
	df, dw, db := nn.New(3, 5), nn.New(5, 4), make([]float32, 4)
	nn.LinearBackward(f, w, r, df, dw, db, false, nil)
	dx := nn.New(x.Shape...)
	nn.GlobalAvgPoolBackward(df, dx)
	x64, w64, b64, r64 := gradcheck.From(x), gradcheck.From(w), f64(b.Data), f64(r.Data)
	loss := func() float64 { return gradcheck.Dot(gradcheck.Linear(gradcheck.GlobalAvgPool(x64), w64, b64), r64) }
	checkGrad(t, "dx", dx.Data, numeric(x64.Data, loss))
	checkGrad(t, "dw", dw.Data, numeric(w64.Data, loss))
	checkGrad(t, "db", db, numeric(b64, loss))
}

// The checkpoint-layout standardisation against the float64 reference, for
// channel counts on and off the column blocks; its backward accumulates.
func TestStandardizeHWIO(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	for _, shape := range [][]int{{3, 3, 5, 7}, {1, 1, 32, 130}, {7, 7, 3, 20}} {
		t.Run(fmt.Sprint(shape), func(t *testing.T) {
			w := randT(rng, 0.2, shape...)
			for i := range w.Data {
				w.Data[i] += 0.05
			}
			ws, inv := nn.New(shape...), make([]float32, shape[3])
			nn.StandardizeHWIOInto(ws, w, inv)
			want := gradcheck.Standardize(gradcheck.HWIOToOIHW(gradcheck.From(w)))
			checkClose(t, "StandardizeHWIOInto", nn.HWIOToOIHW(ws).Data, want.Data, 1e-6)

			gs := randT(rng, 1, shape...)
			s := nn.StandardizationHWIO(w)
			checkClose(t, "scale", s.Scale, f64(inv), 0)
			dw := nn.New(shape...)
			nn.StandardizeBackwardHWIO(w, s, gs, dw, false)
			twice := dw.Clone()
			nn.StandardizeBackwardHWIO(w, s, gs, twice, true)
			for i := range dw.Data {
				dw.Data[i] *= 2
			}
			checkClose(t, "accumulate", twice.Data, f64(dw.Data), 1e-6)
		})
	}
}

// TestConvHWIO checks the checkpoint-layout convolutions against the float64
// reference convolution and its backward on shapes that cross every panel and
// image boundary: channel counts off the 6-row and 16-column panels, pixel
// counts off the panel width, several images, every conv of a BiT unit and
// the root.
func TestConvHWIO(t *testing.T) {
	cases := []convCase{
		{3, 20, 9, 9, 26, 3, 1, 1},
		{3, 20, 9, 9, 26, 3, 2, 1},
		{3, 40, 9, 7, 24, 1, 1, 0},
		{3, 40, 9, 7, 24, 1, 2, 0},
		{2, 3, 19, 19, 18, 7, 2, 3},
		{1, 8, 4, 4, 35, 3, 1, 1},
		{2, 16, 1, 1, 16, 3, 1, 1}, // 1x1 images (the small net's last block at 32 px)
		{3, 8, 8, 8, 20, 3, 1, 1},  // 8x8 images grouped, written straight to NCHW
		{4, 16, 8, 8, 24, 1, 1, 0},
		{2, 8, 8, 8, 12, 3, 2, 1}, // 4x4 outputs: panels of whole output rows, stride 2
	}
	for _, tc := range cases {
		t.Run(tc.String(), func(t *testing.T) {
			x, w, r := tc.draw(rand.New(rand.NewPCG(5, uint64(tc.k*10+tc.stride))))
			x64, wo := gradcheck.From(x), gradcheck.HWIOToOIHW(gradcheck.From(w))
			var arena nn.Arena

			k := nn.PrepareHWIO(w, tc.stride, tc.pad, true, &arena)
			y := nn.New(r.Shape...)
			nn.ConvHWIOInto(y, x, k, tc.stride, tc.pad, &arena)
			checkClose(t, "y", y.Data, gradcheck.Conv(x64, wo, tc.stride, tc.pad).Data, 1e-4)

			wantDX, wantDW := gradcheck.ConvBackward(x64, wo, gradcheck.From(r), tc.stride, tc.pad)
			dx, dw := nn.New(x.Shape...), nn.New(w.Shape...)
			for i := range dw.Data {
				dw.Data[i] = 1 // accumulate adds to this
			}
			nn.ConvHWIOBackward(x, k, r, tc.stride, tc.pad, dx, dw, true, &arena)
			checkClose(t, "dx", dx.Data, wantDX.Data, 1e-4)
			for i := range dw.Data {
				dw.Data[i]--
			}
			checkClose(t, "dw", nn.HWIOToOIHW(dw).Data, wantDW.Data, 1e-4)

			// dx only, dw only.
			dx2 := nn.New(x.Shape...)
			nn.ConvHWIOBackward(x, k, r, tc.stride, tc.pad, dx2, nil, false, &arena)
			checkClose(t, "dx alone", dx2.Data, f64(dx.Data), 0)
			dw2 := nn.New(w.Shape...)
			nn.ConvHWIOBackward(x, nn.PrepareHWIO(w, tc.stride, tc.pad, false, &arena), r, tc.stride, tc.pad, nil, dw2, false, &arena)
			checkClose(t, "dw alone", nn.HWIOToOIHW(dw2).Data, wantDW.Data, 1e-4)
		})
	}
}

// TestPadMaxPool checks the fused pad+pool against ZeroPad then MaxPool
// (ties and negative inputs included: the padding zeros take part) and its
// backward against padPoolBackward.
func TestPadMaxPool(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	for _, sh := range [][]int{{2, 3, 9, 9}, {1, 2, 16, 16}, {2, 1, 4, 5}, {1, 1, 1, 1}} {
		x := randT(rng, 1, sh...)
		for i := range x.Data {
			if i%7 == 0 {
				x.Data[i] = 0.5 // ties
			}
			x.Data[i] -= 0.3 // some windows all negative: a pad zero wins
		}
		want := gradcheck.MaxPool(gradcheck.ZeroPad(gradcheck.From(x), 1), 3, 2)
		got := nn.New(want.Shape...)
		nn.PadMaxPoolInto(got, x, 1, 3, 2)
		checkClose(t, "PadMaxPoolInto", got.Data, want.Data, 0)

		dy := randT(rng, 1, want.Shape...)
		dx := nn.New(x.Shape...)
		nn.PadMaxPoolBackward(x, got, dy, 1, 3, 2, dx)
		checkClose(t, "PadMaxPoolBackward", dx.Data, padPoolBackward(x, dy), 1e-6)
	}
}

// StandardizedSGD gives what the standardisation backward followed by the
// momentum SGD update give, with one or two gradient accumulators, for
// channel counts on and off the 16-column blocks and rows over several
// chunks.
func TestStandardizedSGD(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	for _, shape := range [][]int{{3, 3, 5, 7}, {1, 1, 32, 130}, {3, 3, 64, 48}, {1, 1, 300, 16}} {
		for _, two := range []bool{false, true} {
			t.Run(fmt.Sprint(shape, two), func(t *testing.T) {
				w := randT(rng, 0.2, shape...)
				v := randT(rng, 0.1, shape...)
				g0, g1 := randT(rng, 1, shape...), randT(rng, 1, shape...)
				const mu, lr, wd = 0.9, 0.05, 1e-3
				// Reference: standardise, gather, backward, SGD.
				ws, inv := nn.New(shape...), make([]float32, shape[3])
				nn.StandardizeHWIOInto(ws, w, inv)
				gs := g0.Clone()
				if two {
					nn.AddInPlace(gs, g1)
				}
				dw := nn.New(shape...)
				nn.StandardizeBackwardHWIO(w, nn.StandardizationHWIO(w), gs, dw, false)
				wantV, wantW := make([]float64, len(w.Data)), make([]float64, len(w.Data))
				for i := range w.Data {
					nv := mu*v.Data[i] + dw.Data[i] + wd*w.Data[i]
					wantV[i], wantW[i] = float64(nv), float64(w.Data[i]-lr*nv)
				}
				s := nn.StandardizationHWIO(w)
				checkClose(t, "scale", s.Scale, f64(inv), 0)
				var g1t *nn.Tensor
				if two {
					g1t = g1
				}
				nn.StandardizedSGD(w, v, s, g0, g1t, mu, lr, wd)
				checkClose(t, "v", v.Data, wantV, 0)
				checkClose(t, "w", w.Data, wantW, 0)
			})
		}
	}
}

// padPoolBackward is the reference backward of the 3×3 stride-2 max pool of
// x padded by one zero: each output's gradient goes to the first maximum of
// its window in scan order (nowhere when that is a padding zero).
func padPoolBackward(x, dy *nn.Tensor) []float64 {
	h, w := x.Shape[2], x.Shape[3]
	oh, ow := dy.Shape[2], dy.Shape[3]
	dx := make([]float64, x.Len())
	for plane := 0; plane < x.Shape[0]*x.Shape[1]; plane++ {
		for y := 0; y < oh; y++ {
			for xo := 0; xo < ow; xo++ {
				best, at := math.Inf(-1), -1
				for ky := 0; ky < 3; ky++ {
					for kx := 0; kx < 3; kx++ {
						iy, ix := 2*y-1+ky, 2*xo-1+kx
						v, i := 0.0, -1
						if iy >= 0 && iy < h && ix >= 0 && ix < w {
							i = (plane*h+iy)*w + ix
							v = float64(x.Data[i])
						}
						if v > best {
							best, at = v, i
						}
					}
				}
				if at >= 0 {
					dx[at] += float64(dy.Data[(plane*oh+y)*ow+xo])
				}
			}
		}
	}
	return dx
}

// StandardizedSGDPrepare gives to the bit what StandardizedSGD followed by
// StandardizePrepareHWIO gives: the updated kernel and velocity, the new
// standardisation, and products with the packed operands (shapes with
// column tails past 16 and row counts that are not multiples of 4 or of
// the row chunks).
func TestStandardizedSGDPrepare(t *testing.T) {
	rng := rand.New(rand.NewPCG(6, 6))
	for _, shape := range [][]int{{3, 3, 5, 7}, {1, 1, 37, 20}, {3, 3, 64, 48}, {1, 1, 300, 16}} {
		t.Run(fmt.Sprint(shape), func(t *testing.T) {
			w := randT(rng, 0.2, shape...)
			v := randT(rng, 0.1, shape...)
			g0, g1 := randT(rng, 1, shape...), randT(rng, 1, shape...)
			w2, v2 := w.Clone(), v.Clone()
			const mu, lr, wd = 0.9, 0.05, 1e-3
			var a, a2 nn.Arena
			k := nn.StandardizePrepareHWIO(w, 1, shape[0]/2, true, &a)
			nn.StandardizedSGD(w, v, k.WS, g0, g1, mu, lr, wd)
			want := nn.StandardizePrepareHWIO(w, 1, shape[0]/2, true, &a)
			k2 := nn.StandardizePrepareHWIO(w2, 1, shape[0]/2, true, &a2)
			got := nn.StandardizedSGDPrepare(w2, v2, k2.WS, g0, g1, mu, lr, wd, 1, shape[0]/2, true, &a2)
			if !slices.Equal(w.Data, w2.Data) || !slices.Equal(v.Data, v2.Data) {
				t.Fatal("updated kernel or velocity differs")
			}
			if !slices.Equal(got.WS.Scale, want.WS.Scale) || !slices.Equal(got.WS.Shift, want.WS.Shift) {
				t.Fatalf("standardisation %v %v, want %v %v", got.WS.Scale, got.WS.Shift, want.WS.Scale, want.WS.Shift)
			}
			x := randT(rng, 1, 2, shape[2], 6, 6)
			y, y2 := nn.New(2, shape[3], 6, 6), nn.New(2, shape[3], 6, 6)
			nn.ConvHWIOInto(y, x, want, 1, shape[0]/2, nil)
			nn.ConvHWIOInto(y2, x, got, 1, shape[0]/2, nil)
			if !slices.Equal(y.Data, y2.Data) {
				t.Error("products with the packed kernels differ")
			}
		})
	}
}
