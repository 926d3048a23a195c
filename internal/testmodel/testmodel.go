// Package testmodel makes the BiT weights that the tests of several packages
// share (the CLI, quantize, serve, model, train, export): test support, never
// used on a serving or training path.
package testmodel

import (
	"math"
	"math/rand/v2"

	"github.com/bitrun/bitrun/internal/setting"
	"github.com/bitrun/bitrun/model"
	"github.com/bitrun/bitrun/nn"
)

// Tiny returns the "tiny" architecture with classes outputs: model.Init's
// weights for seed, then a head (kernel and bias) of normal values times
// headScale drawn from seed, so that the logits differ between images (the
// initial head is zero).
func Tiny(classes int, seed uint64, headScale float64) (model.Config, model.Params, error) {
	cfg, err := model.Arch("tiny", classes)
	if err != nil {
		return cfg, nil, err
	}
	params := model.Init(cfg, int64(seed))
	rng := rand.New(rand.NewPCG(seed, seed))
	for _, k := range []string{model.HeadKernel, model.HeadBias} {
		for i := range params[k].Data {
			params[k].Data[i] = float32(rng.NormFloat64() * headScale)
		}
	}
	return cfg, params, nil
}

// Spread says how [Random] draws each kind of parameter: normal values with
// the standard deviation of the field, around 1 for GroupNorm's gamma and
// around 0 elsewhere. In every field zero means the default given and
// negative means none (every value the mean).
type Spread struct {
	// Conv is the deviation of kernel weights; zero means He's
	// sqrt(2/fan-in).
	Conv float64
	// ConvOffset is the deviation of an offset drawn once per output
	// channel and added to all of that channel's weights, so that weight
	// standardisation has a mean to remove; zero means none.
	ConvOffset float64
	// Gamma is the deviation of GroupNorm's gamma around 1; zero means 0.2.
	Gamma float64
	// Beta is the deviation of GroupNorm's beta; zero means 0.1.
	Beta float64
	// Head is the deviation of the head kernel in units of
	// 1/sqrt(fan-in); zero means 1.6 (0.1 for the tiny architecture).
	Head float64
	// HeadBias is the deviation of the head bias; zero means 0.1.
	HeadBias float64
}

// Random returns a value for every tensor of cfg.Spec(), drawn from seed as
// s says. Unlike model.Init it gives the head and GroupNorm's affine
// non-trivial values, so that a test comparing two forwards or checking a
// gradient cannot pass because a term is zero.
func Random(cfg model.Config, seed uint64, s Spread) model.Params {
	rng := rand.New(rand.NewPCG(seed, 1))
	p := model.Params{}
	for _, sp := range cfg.Spec() {
		t := nn.New(sp.Shape...)
		mean, dev := 0.0, 0.0
		var offs []float64
		switch sp.Kind {
		case model.KindConv:
			fanIn := sp.Shape[0] * sp.Shape[1] * sp.Shape[2]
			dev = setting.Resolve(s.Conv, math.Sqrt(2/float64(fanIn)), 0)
			if o := setting.Resolve(s.ConvOffset, 0, 0); o > 0 {
				offs = make([]float64, sp.Shape[3])
				for i := range offs {
					offs[i] = o * rng.NormFloat64()
				}
			}
		case model.KindGamma:
			mean, dev = 1, setting.Resolve(s.Gamma, 0.2, 0)
		case model.KindBeta:
			dev = setting.Resolve(s.Beta, 0.1, 0)
		case model.KindHead:
			dev = setting.Resolve(s.Head, 1.6, 0) / math.Sqrt(float64(sp.Shape[2]))
		case model.KindHeadBias:
			dev = setting.Resolve(s.HeadBias, 0.1, 0)
		}
		for i := range t.Data {
			v := mean + dev*rng.NormFloat64()
			if offs != nil {
				v += offs[i%len(offs)]
			}
			t.Data[i] = float32(v)
		}
		p[sp.Name] = t
	}
	return p
}
