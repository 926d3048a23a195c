//go:build !amd64 || purego

package nn

func sumF64(s []float32) float64                 { return sumF64Go(s) }
func sumSqDev(s []float32, mean float64) float64 { return sumSqDevGo(s, mean) }
func reluSlice(s []float32)                      { reluGo(s) }
func addSlice(dst, src []float32)                { addGo(dst[:len(src)], src) }
func scaleShift(dst, src []float32, scale, shift float32, relu bool) {
	scaleShiftGo(dst[:len(src)], src, scale, shift, relu)
}
