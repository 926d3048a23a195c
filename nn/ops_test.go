package nn

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"testing"
)

func randTensor(r *rand.Rand, shape ...int) *Tensor {
	t := New(shape...)
	for i := range t.Data {
		t.Data[i] = float32(r.NormFloat64())
	}
	return t
}

// refConv is a plain-loop float64 convolution; mag[i] is Σ|w·x| for output i.
func refConv(x, w *Tensor, stride, pad int) (want, mag []float64, shape []int) {
	n, c, h, wd := x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3]
	o, kh, kw := w.Shape[0], w.Shape[2], w.Shape[3]
	oh, ow := (h+2*pad-kh)/stride+1, (wd+2*pad-kw)/stride+1
	want = make([]float64, n*o*oh*ow)
	mag = make([]float64, len(want))
	for b := 0; b < n; b++ {
		for oc := 0; oc < o; oc++ {
			for y := 0; y < oh; y++ {
				for xo := 0; xo < ow; xo++ {
					var s, m float64
					for ch := 0; ch < c; ch++ {
						for ky := 0; ky < kh; ky++ {
							for kx := 0; kx < kw; kx++ {
								iy, ix := y*stride-pad+ky, xo*stride-pad+kx
								if iy < 0 || iy >= h || ix < 0 || ix >= wd {
									continue
								}
								p := float64(w.Data[((oc*c+ch)*kh+ky)*kw+kx]) * float64(x.Data[((b*c+ch)*h+iy)*wd+ix])
								s += p
								m += math.Abs(p)
							}
						}
					}
					i := ((b*o+oc)*oh+y)*ow + xo
					want[i], mag[i] = s, m
				}
			}
		}
	}
	return want, mag, []int{n, o, oh, ow}
}

// TestConv2D checks Conv2D on every backend against refConv: strides 1 and 2,
// pads 0/1/3, 1x1, 3x3 and 7x7 kernels, odd sizes, batches that take the
// per-image path and the grouped path, and the direct 1x1 path. Tolerance per
// output: (K+2)·1.2e-7·Σ|w·x| with K = C·KH·KW terms (the float32
// summation bound).
func TestConv2D(t *testing.T) {
	cases := []struct {
		n, c, h, w, o, k, stride, pad int
	}{
		{1, 3, 17, 17, 8, 7, 2, 3},   // BiT root conv, odd size
		{2, 3, 20, 23, 16, 7, 2, 3},  // root, non-square
		{1, 5, 9, 9, 7, 3, 1, 1},     // 3x3, odd channels
		{3, 8, 11, 13, 12, 3, 2, 1},  // strided 3x3 (first unit of blocks 2-4)
		{2, 6, 7, 7, 10, 1, 1, 0},    // 1x1 direct, grouped (49 px < 256)
		{1, 16, 20, 20, 24, 1, 1, 0}, // 1x1 direct, one image (400 px)
		{3, 8, 9, 9, 16, 1, 2, 0},    // strided 1x1 projection
		{2, 4, 6, 5, 5, 3, 1, 0},     // no padding
		{1, 4, 5, 5, 3, 3, 2, 3},     // pad 3 with a 3x3 kernel: border outputs see only padding
		{5, 4, 12, 12, 6, 3, 1, 1},   // grouped im2col (144 px), groups of 2 plus a remainder
		{2, 32, 18, 18, 64, 3, 1, 1}, // big enough to split the GEMM across cores
		{1, 2, 1, 1, 3, 7, 1, 3},     // 1x1 image, 7x7 kernel: only the centre tap is real
		{1, 4, 32, 32, 8, 3, 1, 1},   // output rows of 32: whole-row panels, stride 1
		{2, 3, 32, 32, 8, 7, 2, 3},   // root at 32 px: 16-wide rows, stride 2, border taps
		{1, 8, 31, 33, 6, 3, 2, 1},   // odd sizes, strided
		{1, 16, 16, 16, 8, 1, 2, 0},  // strided 1x1, rows of 8 (panels span rows)
	}
	type ref struct {
		x, w      *Tensor
		want, mag []float64
		shape     []int
	}
	refs := make([]ref, len(cases))
	r := rand.New(rand.NewPCG(3, 4))
	for i, tc := range cases {
		x := randTensor(r, tc.n, tc.c, tc.h, tc.w)
		w := randTensor(r, tc.o, tc.c, tc.k, tc.k)
		want, mag, shape := refConv(x, w, tc.stride, tc.pad)
		refs[i] = ref{x, w, want, mag, shape}
	}
	forEachBackend(t, func(t *testing.T, g GEMM) {
		for ci, tc := range cases {
			name := fmt.Sprintf("n%d_c%d_%dx%d_o%d_k%d_s%d_p%d", tc.n, tc.c, tc.h, tc.w, tc.o, tc.k, tc.stride, tc.pad)
			x, w, want, mag, shape := refs[ci].x, refs[ci].w, refs[ci].want, refs[ci].mag, refs[ci].shape
			got := Conv2D(x, w, tc.stride, tc.pad)
			if !SameShape(got.Shape, shape) {
				t.Fatalf("%s: shape %v, want %v", name, got.Shape, shape)
			}
			kterms := float64(tc.c * tc.k * tc.k)
			for i, v := range got.Data {
				tol := (kterms+2)*1.2e-7*mag[i] + 1e-30
				if d := math.Abs(float64(v) - want[i]); !(d <= tol) {
					t.Fatalf("%s: out[%d] = %g, want %g (diff %g > tol %g)", name, i, v, want[i], d, tol)
				}
			}
		}
	})
}

// TestConv2DConcurrent runs convolutions from several goroutines at once (as
// a server does) and checks each against a single-goroutine result: pooled
// scratch must never be shared between calls.
func TestConv2DConcurrent(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	type job struct{ x, w, want *Tensor }
	var jobs []job
	for i := 0; i < 6; i++ {
		x := randTensor(r, 1+i%3, 8, 10+i, 10+i)
		w := randTensor(r, 16, 8, 3, 3)
		jobs = append(jobs, job{x, w, Conv2D(x, w, 1, 1)})
	}
	var wg sync.WaitGroup
	for range 4 {
		for i, j := range jobs {
			wg.Go(func() {
				got := Conv2D(j.x, j.w, 1, 1)
				for k := range got.Data {
					if got.Data[k] != j.want.Data[k] {
						t.Errorf("job %d: out[%d] = %g, want %g", i, k, got.Data[k], j.want.Data[k])
						return
					}
				}
			})
		}
	}
	wg.Wait()
}

// TestConv2DBadShapes checks the programmer-error panics name the problem.
func TestConv2DBadShapes(t *testing.T) {
	cases := []struct {
		name   string
		x, w   *Tensor
		stride int
	}{
		{"channels", New(1, 3, 8, 8), New(4, 2, 3, 3), 1},
		{"stride", New(1, 3, 8, 8), New(4, 3, 3, 3), 0},
		{"kernel too big", New(1, 3, 2, 2), New(4, 3, 7, 7), 1},
		{"not 4-D", New(3, 8, 8), New(4, 3, 3, 3), 1},
	}
	for _, tc := range cases {
		func() {
			defer func() {
				if msg, ok := recover().(string); !ok || len(msg) < 4 || msg[:4] != "nn: " {
					t.Errorf("%s: panic %v, want an nn: message", tc.name, msg)
				}
			}()
			Conv2D(tc.x, tc.w, tc.stride, 0)
		}()
	}
}

// refGroupNorm is the float64 GroupNorm with eps 1e-5 (biased variance).
func refGroupNorm(x *Tensor, groups int, gamma, beta []float32) []float64 {
	n, c, h, w := x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3]
	cpg, hw := c/groups, h*w
	out := make([]float64, len(x.Data))
	for b := 0; b < n; b++ {
		for g := 0; g < groups; g++ {
			off := (b*c + g*cpg) * hw
			var s float64
			for _, v := range x.Data[off : off+cpg*hw] {
				s += float64(v)
			}
			mean := s / float64(cpg*hw)
			var q float64
			for _, v := range x.Data[off : off+cpg*hw] {
				q += (float64(v) - mean) * (float64(v) - mean)
			}
			inv := 1 / math.Sqrt(q/float64(cpg*hw)+1e-5)
			for k := 0; k < cpg; k++ {
				ch := g*cpg + k
				for j := 0; j < hw; j++ {
					i := off + k*hw + j
					out[i] = (float64(x.Data[i])-mean)*inv*float64(gamma[ch]) + float64(beta[ch])
				}
			}
		}
	}
	return out
}

// TestGroupNorm checks GroupNorm and GroupNormReLU against the float64
// reference (eps 1e-5) on inputs with a non-zero mean, including a group
// whose variance (1e-6) is below eps, where a wrong epsilon shows at once.
// Tolerance: 2e-5·(1 + |want| + |mean·scale|) absolute.
func TestGroupNorm(t *testing.T) {
	cases := []struct{ n, c, h, w, groups int }{
		{1, 32, 5, 7, 32}, {2, 64, 8, 8, 32}, {3, 12, 3, 3, 4}, {1, 6, 1, 1, 3}, {2, 256, 4, 4, 32},
	}
	forEachBackend(t, func(t *testing.T, _ GEMM) {
		r := rand.New(rand.NewPCG(9, 10))
		for _, tc := range cases {
			x := New(tc.n, tc.c, tc.h, tc.w)
			for i := range x.Data {
				x.Data[i] = float32(3 + 2*r.NormFloat64())
			}
			// First group of image 0: tiny variance, so eps dominates.
			cpg := tc.c / tc.groups
			for i := 0; i < cpg*tc.h*tc.w; i++ {
				x.Data[i] = float32(0.5 + 1e-3*r.NormFloat64())
			}
			gamma, beta := make([]float32, tc.c), make([]float32, tc.c)
			for i := range gamma {
				gamma[i] = float32(1 + 0.5*r.NormFloat64())
				beta[i] = float32(r.NormFloat64())
			}
			want := refGroupNorm(x, tc.groups, gamma, beta)
			for _, relu := range []bool{false, true} {
				var got *Tensor
				if relu {
					got = GroupNormReLU(x, tc.groups, gamma, beta)
				} else {
					got = GroupNorm(x, tc.groups, gamma, beta)
				}
				for i, v := range got.Data {
					w := want[i]
					if relu {
						w = math.Max(w, 0)
					}
					tol := 2e-5 * (1 + math.Abs(w) + 2*math.Abs(float64(gamma[(i/(tc.h*tc.w))%tc.c])))
					if d := math.Abs(float64(v) - w); !(d <= tol) {
						t.Fatalf("%v relu=%v: out[%d] = %g, want %g (diff %g > %g)", tc, relu, i, v, w, d, tol)
					}
				}
			}
		}
	})
}

// TestStandardizeWeight checks weight standardisation against the float64
// reference: per output channel, biased variance over (in, kh, kw), eps 1e-10
// inside the sqrt. One channel is constant (must give zeros, not NaN) and one
// has variance 1e-12, where eps 1e-10 versus 1e-8 changes the result 10x.
// Tolerance: 1e-5 relative + 1e-6 absolute.
func TestStandardizeWeight(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for _, shape := range [][]int{{8, 3, 7, 7}, {5, 4, 3, 3}, {6, 16, 1, 1}, {3, 1, 1, 1}} {
		w := randTensor(r, shape...)
		per := w.Len() / shape[0]
		for j := 0; j < per; j++ {
			w.Data[j] = 0.25                                       // channel 0: constant
			w.Data[per+j] = float32(0.1 + 1e-6*float64(2*(j%2)-1)) // channel 1: variance 1e-12
		}
		got := StandardizeWeight(w)
		for o := 0; o < shape[0]; o++ {
			src := w.Data[o*per : (o+1)*per]
			var mean, q float64
			for _, v := range src {
				mean += float64(v)
			}
			mean /= float64(per)
			for _, v := range src {
				q += (float64(v) - mean) * (float64(v) - mean)
			}
			inv := 1 / math.Sqrt(q/float64(per)+1e-10)
			for j, v := range src {
				want := (float64(v) - mean) * inv
				g := float64(got.Data[o*per+j])
				if d := math.Abs(g - want); !(d <= 1e-5*math.Abs(want)+1e-6) {
					t.Fatalf("shape %v channel %d [%d]: %g, want %g", shape, o, j, g, want)
				}
			}
		}
	}
}

// TestZeroPadMaxPool checks BiT's root pooling (zero pad 1, then 3x3 max pool
// stride 2, no padding) against a reference that treats the pad as zeros, on
// all-negative and mixed inputs (so the zero padding must win at borders).
// Max is exact, so the tolerance is 0.
func TestZeroPadMaxPool(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	for _, tc := range []struct{ n, c, h, w, pad, k, stride int }{
		{1, 3, 8, 8, 1, 3, 2}, {2, 5, 7, 9, 1, 3, 2}, {1, 2, 5, 5, 0, 2, 1}, {1, 1, 6, 6, 2, 3, 3},
	} {
		for _, shift := range []float64{-5, 0} {
			x := New(tc.n, tc.c, tc.h, tc.w)
			for i := range x.Data {
				x.Data[i] = float32(shift + r.NormFloat64())
			}
			got := MaxPool(ZeroPad(x, tc.pad), tc.k, tc.stride)
			ph, pw := tc.h+2*tc.pad, tc.w+2*tc.pad
			oh, ow := (ph-tc.k)/tc.stride+1, (pw-tc.k)/tc.stride+1
			if !SameShape(got.Shape, []int{tc.n, tc.c, oh, ow}) {
				t.Fatalf("%v: shape %v", tc, got.Shape)
			}
			for nc := 0; nc < tc.n*tc.c; nc++ {
				for y := 0; y < oh; y++ {
					for xo := 0; xo < ow; xo++ {
						m := float32(math.Inf(-1))
						for ky := 0; ky < tc.k; ky++ {
							for kx := 0; kx < tc.k; kx++ {
								iy, ix := y*tc.stride+ky-tc.pad, xo*tc.stride+kx-tc.pad
								v := float32(0)
								if iy >= 0 && iy < tc.h && ix >= 0 && ix < tc.w {
									v = x.Data[(nc*tc.h+iy)*tc.w+ix]
								}
								m = max(m, v)
							}
						}
						if g := got.Data[(nc*oh+y)*ow+xo]; g != m {
							t.Fatalf("%v shift %v: out[%d,%d,%d] = %g, want %g", tc, shift, nc, y, xo, g, m)
						}
					}
				}
			}
		}
	}
}

// TestGlobalAvgPoolLinear checks the head: global average pool (tolerance
// 1e-6 relative to the mean |x|) and Linear on every backend (the GEMM bound
// used by TestSgemm plus |bias|).
func TestGlobalAvgPoolLinear(t *testing.T) {
	forEachBackend(t, func(t *testing.T, _ GEMM) {
		r := rand.New(rand.NewPCG(15, 16))
		x := randTensor(r, 3, 40, 5, 7)
		f := GlobalAvgPool(x)
		for i := 0; i < 3*40; i++ {
			var s, m float64
			for _, v := range x.Data[i*35 : (i+1)*35] {
				s += float64(v)
				m += math.Abs(float64(v))
			}
			if d := math.Abs(float64(f.Data[i]) - s/35); !(d <= 1e-6*m/35) {
				t.Fatalf("pool[%d] = %g, want %g", i, f.Data[i], s/35)
			}
		}
		w := randTensor(r, 40, 11)
		b := randSlice(r, 11)
		got := Linear(f, w, b)
		for i := 0; i < 3; i++ {
			for k := 0; k < 11; k++ {
				s, m := float64(b[k]), math.Abs(float64(b[k]))
				for c := 0; c < 40; c++ {
					p := float64(f.Data[i*40+c]) * float64(w.Data[c*11+k])
					s += p
					m += math.Abs(p)
				}
				if d := math.Abs(float64(got.Data[i*11+k]) - s); !(d <= 42*1.2e-7*m) {
					t.Fatalf("linear[%d,%d] = %g, want %g", i, k, got.Data[i*11+k], s)
				}
			}
		}
	})
}

// TestLayouts checks HWIO->OIHW element by element.
func TestLayouts(t *testing.T) {
	r := rand.New(rand.NewPCG(17, 18))
	hwio := randTensor(r, 3, 5, 4, 6) // kh=3 kw=5 in=4 out=6
	oihw := HWIOToOIHW(hwio)
	if !SameShape(oihw.Shape, []int{6, 4, 3, 5}) {
		t.Fatalf("OIHW shape %v", oihw.Shape)
	}
	for y := 0; y < 3; y++ {
		for x := 0; x < 5; x++ {
			for i := 0; i < 4; i++ {
				for o := 0; o < 6; o++ {
					if a, b := hwio.Data[((y*5+x)*4+i)*6+o], oihw.Data[((o*4+i)*3+y)*5+x]; a != b {
						t.Fatalf("[%d,%d,%d,%d]: HWIO %g, OIHW %g", y, x, i, o, a, b)
					}
				}
			}
		}
	}
}

// TestElementwise checks ReLUInPlace and AddInPlace on tensors large enough to
// be split across cores (exact results).
func TestElementwise(t *testing.T) {
	r := rand.New(rand.NewPCG(19, 20))
	a := randTensor(r, 2, 8, 70, 70)
	b := randTensor(r, 2, 8, 70, 70)
	sum := a.Clone()
	AddInPlace(sum, b)
	relu := sum.Clone()
	ReLUInPlace(relu)
	for i := range a.Data {
		s := a.Data[i] + b.Data[i]
		if sum.Data[i] != s {
			t.Fatalf("add[%d] = %g, want %g", i, sum.Data[i], s)
		}
		if want := float32(math.Max(float64(s), 0)); relu.Data[i] != want {
			t.Fatalf("relu[%d] = %g, want %g", i, relu.Data[i], want)
		}
	}
}

// TestConvPackerMatchesIm2Col checks, on random shapes, that the pure-Go
// convolution (im2col panels packed straight from the images, images grouped)
// gives exactly the bits of Im2Col followed by PureGo.Sgemm per image: the
// packer must produce the same matrix, whatever the panel layout.
func TestConvPackerMatchesIm2Col(t *testing.T) {
	prev := Backend()
	defer SetBackend(prev)
	SetBackend(PureGo{})
	r := rand.New(rand.NewPCG(25, 26))
	iters := 60
	if testing.Short() {
		iters = 25
	}
	for it := 0; it < iters; it++ {
		k := []int{1, 1, 3, 3, 7}[r.IntN(5)]
		stride, pad := 1+r.IntN(2), r.IntN(k/2+2)
		n, c, o := 1+r.IntN(4), 1+r.IntN(9), 1+r.IntN(20)
		h, w := k+r.IntN(20), k+r.IntN(20)
		x, wt := randTensor(r, n, c, h, w), randTensor(r, o, c, k, k)
		got := Conv2D(x, wt, stride, pad)
		oh, ow := ConvOutSize(h, k, stride, pad), ConvOutSize(w, k, stride, pad)
		pix, kdim := oh*ow, c*k*k
		col := make([]float32, kdim*pix)
		want := make([]float32, o*pix)
		for b := 0; b < n; b++ {
			Im2Col(x.Data[b*c*h*w:(b+1)*c*h*w], c, h, w, k, k, stride, pad, oh, ow, col)
			PureGo{}.Sgemm(false, false, o, pix, kdim, wt.Data, kdim, col, pix, 0, want, pix)
			for i, v := range want {
				if g := got.Data[b*o*pix+i]; g != v {
					t.Fatalf("n%d c%d %dx%d o%d k%d s%d p%d: image %d out[%d] = %g, im2col path %g", n, c, h, w, o, k, stride, pad, b, i, g, v)
				}
			}
		}
	}
}

// TestConv2DLarge checks BiT-sized layers (block 1 at 224 px, block 4 at
// 128 px with batch 8) against the float64 reference, with TestConv2D's
// tolerance. Skipped under -short: the reference takes a few seconds.
func TestConv2DLarge(t *testing.T) {
	if testing.Short() {
		t.Skip("float64 reference for BiT-sized layers takes seconds; run without -short")
	}
	cases := []struct{ n, c, h, o, k, stride, pad int }{
		{1, 64, 56, 64, 3, 1, 1},
		{8, 512, 4, 2048, 1, 1, 0},
		{2, 3, 96, 64, 7, 2, 3},
	}
	r := rand.New(rand.NewPCG(27, 28))
	for _, tc := range cases {
		x := randTensor(r, tc.n, tc.c, tc.h, tc.h)
		w := randTensor(r, tc.o, tc.c, tc.k, tc.k)
		want, mag, _ := refConv(x, w, tc.stride, tc.pad)
		kterms := float64(tc.c * tc.k * tc.k)
		forEachBackend(t, func(t *testing.T, _ GEMM) {
			got := Conv2D(x, w, tc.stride, tc.pad)
			for i, v := range got.Data {
				if d := math.Abs(float64(v) - want[i]); !(d <= (kterms+2)*1.2e-7*mag[i]) {
					t.Fatalf("%v: out[%d] = %g, want %g", tc, i, v, want[i])
				}
			}
		})
	}
}
