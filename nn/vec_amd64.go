//go:build amd64 && !purego

package nn

// Implemented in vec_amd64.s; n must be a multiple of 16.
//
//go:noescape
func sumF64AVX(p *float32, n int) float64

//go:noescape
func sumSqDevAVX(p *float32, n int, mean float64) float64

//go:noescape
func scaleShiftAVX(dst, src *float32, n int, scale, shift float32, relu bool)

//go:noescape
func reluAVX(p *float32, n int)

//go:noescape
func addAVX(dst, src *float32, n int)

// sumF64 is the float64 sum of s.
func sumF64(s []float32) float64 {
	bulk := len(s) &^ 15
	var sum float64
	if hasAsmKernel && bulk > 0 {
		sum = sumF64AVX(&s[0], bulk)
	} else {
		bulk = 0
	}
	return sum + sumF64Go(s[bulk:])
}

// sumSqDev is Σ (s[i] - mean)² in float64.
func sumSqDev(s []float32, mean float64) float64 {
	bulk := len(s) &^ 15
	var sum float64
	if hasAsmKernel && bulk > 0 {
		sum = sumSqDevAVX(&s[0], bulk, mean)
	} else {
		bulk = 0
	}
	return sum + sumSqDevGo(s[bulk:], mean)
}

// scaleShift sets dst[i] = src[i]*scale + shift, then max(·, 0) when relu.
func scaleShift(dst, src []float32, scale, shift float32, relu bool) {
	dst = dst[:len(src)]
	bulk := len(src) &^ 15
	if hasAsmKernel && bulk > 0 {
		scaleShiftAVX(&dst[0], &src[0], bulk, scale, shift, relu)
	} else {
		bulk = 0
	}
	scaleShiftGo(dst[bulk:], src[bulk:], scale, shift, relu)
}

// reluSlice sets negative values of s to zero.
func reluSlice(s []float32) {
	bulk := len(s) &^ 15
	if hasAsmKernel && bulk > 0 {
		reluAVX(&s[0], bulk)
	} else {
		bulk = 0
	}
	reluGo(s[bulk:])
}

// addSlice adds src to dst element-wise.
func addSlice(dst, src []float32) {
	dst = dst[:len(src)]
	bulk := len(src) &^ 15
	if hasAsmKernel && bulk > 0 {
		addAVX(&dst[0], &src[0], bulk)
	} else {
		bulk = 0
	}
	addGo(dst[bulk:], src[bulk:])
}
