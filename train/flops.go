package train

import (
	"github.com/bitrun/bitrun/model"
	"github.com/bitrun/bitrun/nn"
)

// StepFlops is the floating-point operation count (2 per multiply-add) of
// the products of one training step per image at res×res pixels, every
// parameter trained: the forward convolutions and head, and the backward's
// two products per layer (input and weight gradients; the root
// convolution's input gradient is not computed). Element-wise work is not
// counted.
func StepFlops(cfg model.Config, res int) float64 {
	var fwd, rootFwd float64
	h := res
	conv := func(cin, cout, k, stride, pad int) float64 {
		o := nn.ConvOutSize(h, k, stride, pad)
		return 2 * float64(cin*cout*k*k*o*o)
	}
	rootFwd = conv(3, cfg.RootWidth, 7, 2, 3)
	h = nn.ConvOutSize(nn.ConvOutSize(h, 7, 2, 3)+2, 3, 2, 0)
	in := cfg.RootWidth
	for b := 0; b < 4; b++ {
		out, mid := cfg.Widths[b], cfg.Widths[b]/4
		for u := 0; u < cfg.Units[b]; u++ {
			stride := unitStride(b, u)
			fwd += 2 * float64(in*mid*h*h) // conv a
			if cfg.HasProj(b, u) {
				fwd += conv(in, out, 1, stride, 0)
			}
			fwd += conv(mid, mid, 3, stride, 1)
			h = nn.ConvOutSize(h, 3, stride, 1)
			fwd += 2 * float64(mid*out*h*h) // conv c
			in = out
		}
	}
	fwd += 2 * float64(in*cfg.Classes)
	return rootFwd*2 + fwd*3
}
