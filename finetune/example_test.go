package finetune_test

import (
	"fmt"

	"github.com/bitrun/bitrun/finetune"
)

// The HyperRule for Fashion-MNIST (60,000 images of 28×28) and its learning
// rate at a batch of 128.
func ExampleHyperRuleFor() {
	h, err := finetune.HyperRuleFor(60_000, 28*28, finetune.RulePaper)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("resize %d crop %d, %d steps, warmup %d, decays %v, mixup %g\n",
		h.Resize, h.Crop, h.Steps, h.Warmup, h.Decays, h.MixupAlpha)
	for _, step := range []int{250, 500, 3_000, 9_999} {
		fmt.Printf("lr(%d) = %.3g\n", step, h.LR(step, 128))
	}
	// Output:
	// resize 160 crop 128, 10000 steps, warmup 500, decays [3000 6000 9000], mixup 0.1
	// lr(250) = 0.000375
	// lr(500) = 0.00075
	// lr(3000) = 7.5e-05
	// lr(9999) = 7.5e-07
}

// Scale keeps the warmup and decays at the same fractions of a shorter
// schedule.
func ExampleHyperRule_Scale() {
	h, _ := finetune.HyperRuleFor(1_000, 32*32, finetune.RulePaper)
	s := h.Scale(100)
	fmt.Println(s.Steps, s.Warmup, s.Decays)
	// Output: 100 20 [40 60 80]
}
