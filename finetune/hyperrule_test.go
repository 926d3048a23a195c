package finetune

import (
	"math"
	"testing"
)

func TestHyperRuleTiers(t *testing.T) {
	tests := []struct {
		name          string
		n, area       int
		rule          ResolutionRule
		resize, crop  int
		steps, warmup int
		decays        []int
		mixup         float64
	}{
		{"tiny images, small set", 19_999, 95 * 95, RulePaper, 160, 128, 500, 100, []int{200, 300, 400}, 0},
		{"boundary 20k examples", 20_000, 95 * 95, RulePaper, 160, 128, 10_000, 500, []int{3_000, 6_000, 9_000}, 0.1},
		{"boundary 96x96 paper", 19_999, 96 * 96, RulePaper, 448, 384, 500, 100, []int{200, 300, 400}, 0},
		{"boundary 96x96 code", 19_999, 96 * 96, RuleCode, 512, 480, 500, 100, []int{200, 300, 400}, 0},
		{"below 500k", 499_999, 224 * 224, RulePaper, 448, 384, 10_000, 500, []int{3_000, 6_000, 9_000}, 0.1},
		{"500k and above", 500_000, 224 * 224, "", 448, 384, 20_000, 500, []int{6_000, 12_000, 18_000}, 0.1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, err := HyperRuleFor(tc.n, tc.area, tc.rule)
			if err != nil {
				t.Fatal(err)
			}
			if h.Resize != tc.resize || h.Crop != tc.crop {
				t.Errorf("resolution %d->%d, want %d->%d", h.Resize, h.Crop, tc.resize, tc.crop)
			}
			if h.Steps != tc.steps || h.Warmup != tc.warmup {
				t.Errorf("steps %d warmup %d, want %d %d", h.Steps, h.Warmup, tc.steps, tc.warmup)
			}
			if len(h.Decays) != len(tc.decays) {
				t.Fatalf("decays %v, want %v", h.Decays, tc.decays)
			}
			for i := range h.Decays {
				if h.Decays[i] != tc.decays[i] {
					t.Errorf("decays %v, want %v", h.Decays, tc.decays)
				}
			}
			if h.MixupAlpha != tc.mixup {
				t.Errorf("mixup %v, want %v", h.MixupAlpha, tc.mixup)
			}
			if h.BaseLR != 0.003 || h.BatchSize != 512 || h.Momentum != 0.9 || h.WeightDecay != 0 {
				t.Errorf("optimiser %v/%d/%v/%v, want 0.003/512/0.9/0", h.BaseLR, h.BatchSize, h.Momentum, h.WeightDecay)
			}
		})
	}
}

func TestHyperRuleErrors(t *testing.T) {
	if _, err := HyperRuleFor(0, 100, RulePaper); err == nil {
		t.Error("empty training set accepted")
	}
	if _, err := HyperRuleFor(10, 0, RulePaper); err == nil {
		t.Error("zero image area accepted")
	}
	if _, err := HyperRuleFor(10, 100*100, "bogus"); err == nil {
		t.Error("unknown rule accepted")
	}
}

func TestHyperRuleLR(t *testing.T) {
	h, err := HyperRuleFor(1000, 28*28, RulePaper)
	if err != nil {
		t.Fatal(err)
	}
	near := func(a, b float64) bool { return math.Abs(a-b) <= 1e-12*math.Max(1, math.Abs(b)) }
	cases := []struct {
		step, batch int
		want        float64
	}{
		{0, 512, 0},                 // warmup starts at 0
		{50, 512, 0.0015},           // half way through warmup
		{99, 512, 0.003 * 99 / 100}, // last warmup step
		{100, 512, 0.003},           // warmup done
		{199, 512, 0.003},
		{200, 512, 0.0003}, // first decay
		{300, 512, 0.00003},
		{400, 512, 0.000003},
		{499, 512, 0.000003},  // end
		{100, 128, 0.003 / 4}, // scaled by batch/512
	}
	for _, c := range cases {
		if got := h.LR(c.step, c.batch); !near(got, c.want) {
			t.Errorf("LR(%d, %d) = %g, want %g", c.step, c.batch, got, c.want)
		}
	}
}

func TestHyperRuleScale(t *testing.T) {
	h, _ := HyperRuleFor(1000, 28*28, RulePaper)
	s := h.Scale(250)
	if s.Steps != 250 || s.Warmup != 50 || s.Decays[0] != 100 || s.Decays[2] != 200 {
		t.Errorf("Scale(250) = %+v", s)
	}
	if h.Decays[0] != 200 {
		t.Error("Scale modified the receiver")
	}
}
