// Package gradcheck is the float64 reference used by the gradient checks of
// nn and train: naive, obviously-correct float64 versions of every BiT op and
// of the whole BiT forward, and central finite differences. It is test support
// code: slow by design, never used on a hot path.
package gradcheck

import (
	"math"

	"github.com/bitrun/bitrun/model"
	"github.com/bitrun/bitrun/nn"
)

// T is a dense float64 tensor (row-major, NCHW / OIHW as in nn).
type T struct {
	Shape []int
	Data  []float64
}

// New returns a zero tensor.
func New(shape ...int) T {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return T{Shape: append([]int(nil), shape...), Data: make([]float64, n)}
}

// From widens a float32 tensor.
func From(t *nn.Tensor) T {
	out := New(t.Shape...)
	for i, v := range t.Data {
		out.Data[i] = float64(v)
	}
	return out
}

func (t T) at4(a, b, c, d int) int {
	return ((a*t.Shape[1]+b)*t.Shape[2]+c)*t.Shape[3] + d
}

// Conv is a direct convolution of x [N,C,H,W] with w [O,C,KH,KW].
func Conv(x, w T, stride, pad int) T {
	out := New(convOut(x, w, stride, pad)...)
	convTaps(x, w, stride, pad, func(xi, wi, oi int) { out.Data[oi] += w.Data[wi] * x.Data[xi] })
	return out
}

// ConvBackward returns the gradients of Dot(Conv(x, w, stride, pad), dy)
// with respect to x and w.
func ConvBackward(x, w, dy T, stride, pad int) (dx, dw T) {
	dx, dw = New(x.Shape...), New(w.Shape...)
	convTaps(x, w, stride, pad, func(xi, wi, oi int) {
		dx.Data[xi] += w.Data[wi] * dy.Data[oi]
		dw.Data[wi] += x.Data[xi] * dy.Data[oi]
	})
	return dx, dw
}

// convOut is the output shape of Conv.
func convOut(x, w T, stride, pad int) []int {
	return []int{x.Shape[0], w.Shape[0], (x.Shape[2]+2*pad-w.Shape[2])/stride + 1, (x.Shape[3]+2*pad-w.Shape[3])/stride + 1}
}

// convTaps calls f with the indices into x, w and the output of every
// product term of the convolution.
func convTaps(x, w T, stride, pad int, f func(xi, wi, oi int)) {
	n, c, h, wd := x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3]
	o, kh, kw := w.Shape[0], w.Shape[2], w.Shape[3]
	sh := convOut(x, w, stride, pad)
	oh, ow := sh[2], sh[3]
	for b := 0; b < n; b++ {
		for oc := 0; oc < o; oc++ {
			for ic := 0; ic < c; ic++ {
				for ky := 0; ky < kh; ky++ {
					for kx := 0; kx < kw; kx++ {
						wi := ((oc*c+ic)*kh+ky)*kw + kx
						for y := 0; y < oh; y++ {
							iy := y*stride - pad + ky
							if iy < 0 || iy >= h {
								continue
							}
							for xo := 0; xo < ow; xo++ {
								if ix := xo*stride - pad + kx; ix >= 0 && ix < wd {
									f(((b*c+ic)*h+iy)*wd+ix, wi, ((b*o+oc)*oh+y)*ow+xo)
								}
							}
						}
					}
				}
			}
		}
	}
}

// Standardize is weight standardisation per output channel of an OIHW kernel.
func Standardize(w T) T {
	o := w.Shape[0]
	per := len(w.Data) / o
	out := New(w.Shape...)
	for i := 0; i < o; i++ {
		row := w.Data[i*per : (i+1)*per]
		var m, v float64
		for _, x := range row {
			m += x
		}
		m /= float64(per)
		for _, x := range row {
			v += (x - m) * (x - m)
		}
		v /= float64(per)
		s := math.Sqrt(v + nn.WSEpsilon)
		for j, x := range row {
			out.Data[i*per+j] = (x - m) / s
		}
	}
	return out
}

// GroupNorm normalises groups of channels and applies the per-channel affine.
func GroupNorm(x T, groups int, gamma, beta []float64) T {
	n, c, h, w := x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3]
	cpg, hw := c/groups, h*w
	out := New(x.Shape...)
	for b := 0; b < n; b++ {
		for g := 0; g < groups; g++ {
			off := (b*c + g*cpg) * hw
			seg := x.Data[off : off+cpg*hw]
			var m, v float64
			for _, e := range seg {
				m += e
			}
			m /= float64(len(seg))
			for _, e := range seg {
				v += (e - m) * (e - m)
			}
			v /= float64(len(seg))
			s := math.Sqrt(v + nn.GNEpsilon)
			for j, e := range seg {
				ch := g*cpg + j/hw
				out.Data[off+j] = gamma[ch]*(e-m)/s + beta[ch]
			}
		}
	}
	return out
}

// ReLU returns max(x, 0).
func ReLU(x T) T {
	out := New(x.Shape...)
	for i, v := range x.Data {
		out.Data[i] = math.Max(v, 0)
	}
	return out
}

// ZeroPad pads H and W with p zeros per side.
func ZeroPad(x T, p int) T {
	n, c, h, w := x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3]
	out := New(n, c, h+2*p, w+2*p)
	for b := 0; b < n; b++ {
		for ch := 0; ch < c; ch++ {
			for y := 0; y < h; y++ {
				for xx := 0; xx < w; xx++ {
					out.Data[out.at4(b, ch, y+p, xx+p)] = x.Data[x.at4(b, ch, y, xx)]
				}
			}
		}
	}
	return out
}

// MaxPool is a k×k max pool with the given stride and no padding.
func MaxPool(x T, k, stride int) T {
	n, c, h, w := x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3]
	oh, ow := (h-k)/stride+1, (w-k)/stride+1
	out := New(n, c, oh, ow)
	for b := 0; b < n; b++ {
		for ch := 0; ch < c; ch++ {
			for y := 0; y < oh; y++ {
				for xx := 0; xx < ow; xx++ {
					m := math.Inf(-1)
					for ky := 0; ky < k; ky++ {
						for kx := 0; kx < k; kx++ {
							m = math.Max(m, x.Data[x.at4(b, ch, y*stride+ky, xx*stride+kx)])
						}
					}
					out.Data[out.at4(b, ch, y, xx)] = m
				}
			}
		}
	}
	return out
}

// GlobalAvgPool averages over H and W: [N,C,H,W] -> [N,C].
func GlobalAvgPool(x T) T {
	n, c, hw := x.Shape[0], x.Shape[1], x.Shape[2]*x.Shape[3]
	out := New(n, c)
	for i := 0; i < n*c; i++ {
		var s float64
		for _, v := range x.Data[i*hw : (i+1)*hw] {
			s += v
		}
		out.Data[i] = s / float64(hw)
	}
	return out
}

// Linear is x [N,C] · w [C,K] + b.
func Linear(x, w T, b []float64) T {
	n, c, k := x.Shape[0], x.Shape[1], w.Shape[1]
	out := New(n, k)
	for i := 0; i < n; i++ {
		for j := 0; j < k; j++ {
			s := b[j]
			for q := 0; q < c; q++ {
				s += x.Data[i*c+q] * w.Data[q*k+j]
			}
			out.Data[i*k+j] = s
		}
	}
	return out
}

// SoftCE is the summed cross-entropy of softmax(logits [N,K]) with soft targets.
func SoftCE(logits T, targets []float64) float64 {
	n, k := logits.Shape[0], logits.Shape[1]
	var total float64
	for i := 0; i < n; i++ {
		z := logits.Data[i*k : (i+1)*k]
		m := math.Inf(-1)
		for _, v := range z {
			m = math.Max(m, v)
		}
		var s float64
		for _, v := range z {
			s += math.Exp(v - m)
		}
		lse := m + math.Log(s)
		for j, v := range z {
			total -= targets[i*k+j] * (v - lse)
		}
	}
	return total
}

// Dot is Σ a·b, the scalar loss used to check an op against a random upstream
// gradient.
func Dot(a T, b []float64) float64 {
	var s float64
	for i, v := range a.Data {
		s += v * b[i]
	}
	return s
}

// HWIOToOIHW converts a checkpoint-layout kernel.
func HWIOToOIHW(w T) T {
	kh, kw, ci, co := w.Shape[0], w.Shape[1], w.Shape[2], w.Shape[3]
	out := New(co, ci, kh, kw)
	nn.PermuteHWIO(out.Data, w.Data, kh, kw, ci, co)
	return out
}

// Params is a float64 copy of model.Params (checkpoint layout).
type Params map[string]T

// FromParams widens model parameters.
func FromParams(p model.Params) Params {
	out := Params{}
	for k, v := range p {
		out[k] = From(v)
	}
	return out
}

// Forward is the BiT forward in float64, written straight from the
// architecture description: it returns the logits.
func Forward(cfg model.Config, p Params, x T) T {
	conv := func(h T, key string, stride, pad int) T {
		return Conv(h, Standardize(HWIOToOIHW(p[key])), stride, pad)
	}
	h := MaxPool(ZeroPad(conv(x, model.RootKernel, 2, 3), 1), 3, 2)
	for b := 0; b < 4; b++ {
		for u := 0; u < cfg.Units[b]; u++ {
			stride := 1
			if u == 0 {
				stride = model.BlockStride(b)
			}
			gnr := func(t T, part string) T {
				return ReLU(GroupNorm(t, cfg.Groups, p[model.GammaKey(b, u, part)].Data, p[model.BetaKey(b, u, part)].Data))
			}
			pre := gnr(h, "a")
			short := h
			if cfg.HasProj(b, u) {
				short = conv(pre, model.ConvKey(b, u, "a/proj"), stride, 0)
			}
			y := conv(pre, model.ConvKey(b, u, "a"), 1, 0)
			y = conv(gnr(y, "b"), model.ConvKey(b, u, "b"), stride, 1)
			y = conv(gnr(y, "c"), model.ConvKey(b, u, "c"), 1, 0)
			for i := range y.Data {
				y.Data[i] += short.Data[i]
			}
			h = y
		}
	}
	h = ReLU(GroupNorm(h, cfg.Groups, p[model.HeadGamma].Data, p[model.HeadBeta].Data))
	f := GlobalAvgPool(h)
	hk := p[model.HeadKernel]
	w := T{Shape: []int{hk.Shape[2], hk.Shape[3]}, Data: hk.Data}
	return Linear(f, w, p[model.HeadBias].Data)
}

// Central returns (f(v+eps) - f(v-eps)) / 2eps, restoring *v.
func Central(f func() float64, v *float64, eps float64) float64 {
	old := *v
	*v = old + eps
	fp := f()
	*v = old - eps
	fm := f()
	*v = old
	return (fp - fm) / (2 * eps)
}

// RelErr is ‖a − n‖₂ / max(‖a‖₂, ‖n‖₂): the relative error of an analytic
// gradient a against a numeric one n (0 when both are zero).
func RelErr(a []float32, n []float64) float64 {
	var d, na, nn2 float64
	for i := range n {
		x := float64(a[i])
		d += (x - n[i]) * (x - n[i])
		na += x * x
		nn2 += n[i] * n[i]
	}
	den := math.Sqrt(math.Max(na, nn2))
	if den == 0 {
		return 0
	}
	return math.Sqrt(d) / den
}
