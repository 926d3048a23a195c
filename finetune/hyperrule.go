package finetune

import (
	"fmt"
	"math"
)

// ResolutionRule selects the large-image resolution tier of the HyperRule.
type ResolutionRule string

const (
	// RulePaper is the paper's tier: resize 448, crop 384 for images of area >= 96x96.
	RulePaper ResolutionRule = "paper"
	// RuleCode is the released reference code's tier: resize 512, crop 480.
	RuleCode ResolutionRule = "code"
)

// HyperRule is the BiT fine-tuning recipe for one dataset. Every field may be
// overridden after HyperRuleFor computes it. It records values as used, not
// settings with defaults: a zero Warmup, MixupAlpha or WeightDecay is none,
// and a negative value is invalid (Run returns ErrOptions).
type HyperRule struct {
	Examples    int     `json:"examples"`    // training-set size the rule was computed from
	ImageArea   int     `json:"image_area"`  // width*height of the training images
	Resize      int     `json:"resize"`      // train-time square resize before the crop
	Crop        int     `json:"crop"`        // train crop = test resolution
	Steps       int     `json:"steps"`       // schedule length
	Warmup      int     `json:"warmup"`      // linear warmup from 0 over this many steps
	Decays      []int   `json:"decays"`      // lr x0.1 at each of these steps
	MixupAlpha  float64 `json:"mixup_alpha"` // 0 disables MixUp
	BaseLR      float64 `json:"base_lr"`     // at BatchSize
	BatchSize   int     `json:"batch_size"`
	Momentum    float64 `json:"momentum"`
	WeightDecay float64 `json:"weight_decay"`
}

// Tier boundaries of the HyperRule.
const (
	smallImageSide   = 96     // area < 96*96 uses the low-resolution tier
	smallDatasetSize = 20_000 // < 20k examples: short schedule, no MixUp
	largeDatasetSize = 500_000
)

// HyperRuleFor computes the BiT-HyperRule for a training set of n examples whose
// images have the given area (width*height, in pixels).
func HyperRuleFor(n, imageArea int, rule ResolutionRule) (HyperRule, error) {
	if n <= 0 {
		return HyperRule{}, fmt.Errorf("finetune: hyperrule: training set is empty")
	}
	if imageArea <= 0 {
		return HyperRule{}, fmt.Errorf("finetune: hyperrule: image area must be positive, got %d", imageArea)
	}
	h := HyperRule{Examples: n, ImageArea: imageArea, BaseLR: 0.003, BatchSize: 512, Momentum: 0.9}
	switch {
	case imageArea < smallImageSide*smallImageSide:
		h.Resize, h.Crop = 160, 128
	case rule == RuleCode:
		h.Resize, h.Crop = 512, 480
	case rule == RulePaper || rule == "":
		h.Resize, h.Crop = 448, 384
	default:
		return HyperRule{}, fmt.Errorf("finetune: unknown resolution rule %q (want paper or code)", rule)
	}
	switch {
	case n < smallDatasetSize:
		h.Steps, h.Warmup, h.Decays = 500, 100, []int{200, 300, 400}
	case n < largeDatasetSize:
		h.Steps, h.Warmup, h.Decays = 10_000, 500, []int{3_000, 6_000, 9_000}
	default:
		h.Steps, h.Warmup, h.Decays = 20_000, 500, []int{6_000, 12_000, 18_000}
	}
	if n >= smallDatasetSize {
		h.MixupAlpha = 0.1
	}
	return h, nil
}

// LR is the learning rate at step (0-based) for a given actual batch size: the
// base lr scaled by batch/BatchSize, linear warmup from 0, then x0.1 at each decay.
func (h HyperRule) LR(step, batch int) float64 {
	lr := h.BaseLR * float64(batch) / float64(h.BatchSize)
	if step < h.Warmup {
		return lr * float64(step) / float64(h.Warmup)
	}
	for _, d := range h.Decays {
		if step >= d {
			lr *= 0.1
		}
	}
	return lr
}

// Scale shortens or lengthens the schedule to steps, keeping the warmup and
// decay points at the same fractions.
func (h HyperRule) Scale(steps int) HyperRule {
	if steps <= 0 || steps == h.Steps {
		return h
	}
	f := float64(steps) / float64(h.Steps)
	out := h
	out.Steps = steps
	out.Warmup = int(math.Round(float64(h.Warmup) * f))
	out.Decays = make([]int, len(h.Decays))
	for i, d := range h.Decays {
		out.Decays[i] = int(math.Round(float64(d) * f))
	}
	return out
}
