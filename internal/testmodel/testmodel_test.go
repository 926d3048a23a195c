package testmodel

import (
	"math"
	"testing"

	"github.com/bitrun/bitrun/model"
)

// moments returns the mean and standard deviation of v.
func moments(v []float32) (mean, sd float64) {
	for _, x := range v {
		mean += float64(x)
	}
	mean /= float64(len(v))
	for _, x := range v {
		sd += (float64(x) - mean) * (float64(x) - mean)
	}
	return mean, math.Sqrt(sd / float64(len(v)))
}

// TestRandom: every tensor of the spec is drawn, with the spread's defaults,
// negative fields give the mean alone, and ConvOffset moves whole output
// channels.
func TestRandom(t *testing.T) {
	cfg, err := model.Arch("tiny", 10)
	if err != nil {
		t.Fatal(err)
	}
	p := Random(cfg, 1, Spread{})
	if err := model.Check(cfg, p); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name     string
		mean, sd float64
	}{
		{model.HeadKernel, 0, 0.1},
		{model.HeadGamma, 1, 0.2},
		{model.HeadBeta, 0, 0.1},
	} {
		m, sd := moments(p[c.name].Data)
		if math.Abs(m-c.mean) > 0.05 || math.Abs(sd-c.sd) > 0.3*c.sd {
			t.Errorf("%s: mean %.3f sd %.3f, want about %g and %g", c.name, m, sd, c.mean, c.sd)
		}
	}
	flat := Random(cfg, 1, Spread{Gamma: -1, Beta: -1})
	if m, sd := moments(flat[model.HeadGamma].Data); m != 1 || sd != 0 {
		t.Errorf("Gamma -1: mean %g sd %g, want all 1", m, sd)
	}
	if m, sd := moments(flat[model.HeadBeta].Data); m != 0 || sd != 0 {
		t.Errorf("Beta -1: mean %g sd %g, want all 0", m, sd)
	}
	// With a tiny deviation and a large offset, each output channel of a
	// kernel (the last HWIO axis) is nearly constant and channels differ.
	off := Random(cfg, 1, Spread{Conv: 1e-6, ConvOffset: 1})
	for _, s := range cfg.Spec() {
		if s.Kind != model.KindConv {
			continue
		}
		d, co := off[s.Name].Data, s.Shape[3]
		if d[0] == d[1] || math.Abs(float64(d[0]-d[co])) > 1e-4 {
			t.Errorf("%s: channel 0 holds %g and %g, channel 1 %g", s.Name, d[0], d[co], d[1])
		}
		break
	}
}
