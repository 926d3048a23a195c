package quantize

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Method is how an activation's range is taken from the calibration data.
// The zero value is min-max.
type Method struct {
	// Percentile, when positive, clips the range at this percentile of the
	// absolute values (for example 99.99); 0 means min-max.
	Percentile float64
}

// MinMax is the min-max method: the range is the smallest and largest value
// seen.
var MinMax = Method{}

// String is the method as ParseMethod reads it: "minmax" or
// "percentile:P".
func (m Method) String() string {
	if m.Percentile > 0 {
		return "percentile:" + strconv.FormatFloat(m.Percentile, 'g', -1, 64)
	}
	return "minmax"
}

// DefaultPercentile is the percentile of "percentile" without a value.
const DefaultPercentile = 99.99

// ParseMethod reads "minmax", "percentile" (99.99) or "percentile:P" with
// 50 <= P < 100.
func ParseMethod(s string) (Method, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	switch {
	case s == "minmax" || s == "min-max" || s == "":
		return MinMax, nil
	case s == "percentile":
		return Method{Percentile: DefaultPercentile}, nil
	case strings.HasPrefix(s, "percentile:"):
		p, err := strconv.ParseFloat(strings.TrimPrefix(s, "percentile:"), 64)
		if err != nil || !(p >= 50 && p < 100) {
			return Method{}, fmt.Errorf("%w: calibration method %q: the percentile must be a number in [50, 100)", ErrOptions, s)
		}
		return Method{Percentile: p}, nil
	}
	return Method{}, fmt.Errorf("%w: calibration method %q (want minmax or percentile:P, e.g. percentile:99.99)", ErrOptions, s)
}

// histBins is the resolution of the percentile histograms.
const histBins = 2048

// rangeStats accumulates what calibration needs of one activation tensor:
// its exact min and max and, for the percentile method, a histogram of
// absolute values over [0, top). The histogram keeps a fixed number of
// bins; when a value passes top, top doubles and neighbouring bins merge,
// so memory stays histBins counters whatever the data.
type rangeStats struct {
	name     string
	min, max float32
	n        int64
	hist     []int64 // nil for min-max
	top      float64
}

func newRangeStats(name string, m Method) *rangeStats {
	s := &rangeStats{name: name, min: float32(math.Inf(1)), max: float32(math.Inf(-1))}
	if m.Percentile > 0 {
		s.hist = make([]int64, histBins)
	}
	return s
}

// add folds x into the statistics. A NaN or infinity gives an error
// wrapping ErrNonFinite with the flat index of the first one.
func (s *rangeStats) add(x []float32) error {
	lo, hi := s.min, s.max
	amax := float32(0)
	for i, v := range x {
		if v-v != 0 { // NaN or ±Inf
			return fmt.Errorf("%w: activation %q has %v at flat index %d", ErrNonFinite, s.name, v, i)
		}
		lo = min(lo, v)
		hi = max(hi, v)
		amax = max(amax, v, -v)
	}
	s.min, s.max = lo, hi
	s.n += int64(len(x))
	if s.hist == nil || len(x) == 0 {
		return nil
	}
	if s.top == 0 {
		s.top = float64(amax)
		if s.top == 0 {
			s.top = 1e-30
		}
	}
	for float64(amax) > s.top {
		s.grow()
	}
	scale := histBins / s.top
	last := histBins - 1
	h := s.hist
	for _, v := range x {
		b := int(float64(max(v, -v)) * scale)
		if b > last {
			b = last
		}
		h[b]++
	}
	return nil
}

// grow doubles top, merging each pair of bins into one.
func (s *rangeStats) grow() {
	for i := 0; i < histBins/2; i++ {
		s.hist[i] = s.hist[2*i] + s.hist[2*i+1]
	}
	clear(s.hist[histBins/2:])
	s.top *= 2
}

// bounds returns the range to quantize: min-max, or clipped at the
// percentile p of the absolute values. The range always holds zero.
func (s *rangeStats) bounds(p float64) (lo, hi float32) {
	lo, hi = min(s.min, 0), max(s.max, 0)
	if s.hist == nil || p <= 0 || s.n == 0 {
		return lo, hi
	}
	target := int64(math.Ceil(p / 100 * float64(s.n)))
	var cum int64
	thr := s.top
	for i, c := range s.hist {
		cum += c
		if cum >= target {
			thr = float64(i+1) * s.top / histBins
			break
		}
	}
	t := float32(thr)
	return max(lo, -t), min(hi, t)
}

// uint8Params are the scale and zero point of an asymmetric uint8
// quantization of [lo, hi] (lo <= 0 <= hi): zero is represented exactly.
func uint8Params(lo, hi float32) (scale float32, zero uint8) {
	if hi-lo <= 0 {
		return 1, 0
	}
	scale = (hi - lo) / 255
	z := math.Round(float64(-lo / scale))
	return scale, uint8(min(max(z, 0), 255))
}

// int8PerChannel quantizes w (channels blocks of per values when stride
// is per, or strided when channels are the fast axis) symmetrically to
// int8 in [-127, 127] with one scale per channel. axisFast selects the
// layout: false for [channels, per...] (conv OIHW), true for [per,
// channels] (Gemm B [C, K], channels = K).
func int8PerChannel(w []float32, channels int, axisFast bool) (q []int8, scales []float32) {
	per := len(w) / channels
	idx := func(c, j int) int {
		if axisFast {
			return j*channels + c
		}
		return c*per + j
	}
	q = make([]int8, len(w))
	scales = make([]float32, channels)
	for c := range channels {
		amax := float32(0)
		for j := range per {
			v := w[idx(c, j)]
			amax = max(amax, v, -v)
		}
		s := amax / 127
		if s == 0 {
			s = 1
		}
		scales[c] = s
		for j := range per {
			k := idx(c, j)
			r := math.Round(float64(w[k] / s))
			q[k] = int8(min(max(r, -127), 127))
		}
	}
	return q, scales
}
