// Package testmodel makes the small BiT weights that the tests of several
// packages share (the CLI, quantize, serve): test support, never used on a
// serving or training path.
package testmodel

import (
	"math/rand/v2"

	"github.com/bitrun/bitrun/model"
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
