package train

import "fmt"

// Schedule gives the learning rate of a (0-based) step.
type Schedule func(step int) float64

// StepSchedule is a linear warmup from 0 to base over warmup steps, then a
// staircase: the rate is multiplied by factor at each step in decays (sorted).
// It is the shape of both BiT recipes: upstream (UpstreamSchedule) and the
// fine-tuning HyperRule (base 0.003×batch/512, factor 0.1).
func StepSchedule(base float64, warmup int, decays []int, factor float64) Schedule {
	d := append([]int(nil), decays...)
	return func(step int) float64 {
		lr := base
		for _, s := range d {
			if step >= s {
				lr *= factor
			}
		}
		if step < warmup {
			lr *= float64(step) / float64(warmup)
		}
		return lr
	}
}

// UpstreamDecays are the BiT upstream decay points, ×0.1 at 1/3, 2/3 and 8/9
// of a schedule of total steps (30, 60 and 80 of 90 epochs).
func UpstreamDecays(total int) []int {
	return []int{total / 3, total * 2 / 3, total * 8 / 9}
}

// UpstreamLR is the BiT upstream base learning rate for a batch size:
// 0.03 × batch / 256.
func UpstreamLR(batch int) float64 { return 0.03 * float64(batch) / 256 }

// UpstreamSchedule is the BiT upstream (from-scratch) schedule: linear
// warmup, then ×0.1 at 1/3, 2/3 and 8/9 of total steps.
func UpstreamSchedule(base float64, total, warmup int) (Schedule, error) {
	if total <= 0 || warmup < 0 || warmup >= total || base <= 0 {
		return nil, fmt.Errorf("train: bad schedule: base lr %g, %d steps, %d warmup", base, total, warmup)
	}
	return StepSchedule(base, warmup, UpstreamDecays(total), 0.1), nil
}
