//go:build !amd64 || purego

package nn

func sumF64(s []float32) float64                 { return sumF64Go(s) }
func sumSqDev(s []float32, mean float64) float64 { return sumSqDevGo(s, mean) }
func reluSlice(s []float32)                      { reluGo(s) }
func addSlice(dst, src []float32)                { addGo(dst[:len(src)], src) }
func scaleShift(dst, src []float32, scale, shift float32, relu bool) {
	scaleShiftGo(dst[:len(src)], src, scale, shift, relu)
}

func gnSums(dy, x, y []float32, mu float64) (sdy, sdyx float64) { return gnSumsGo(dy, x, y, mu) }
func gnApply(out, dy, x, y []float32, mu, a, b, c float32) {
	gnApplyGo(out, dy, x, y, mu, a, b, c)
}

func colAffine(out, g, w, a, b, c []float32, acc bool) {
	colAffineGo(out, g, w, a, b, c, acc)
}

func transpose16(dst, src []float32, ld, n int) { transpose16Go(dst, src, ld, n) }

func wsGradSums(sa, sb []float64, g0, g1, w, scale, shift []float32, rows, ld int) {
	wsGradSumsGo(sa, sb, g0, g1, w, scale, shift, rows, ld)
}

func wsSGDRow(w, v, g0, g1, scale, shift, b, c []float32, mu, lr, wd float32) {
	wsSGDGo(w, v, g0, g1, scale, shift, b, c, mu, lr, wd)
}

func packTransFull(a []float32, lda, m, q0, q1, k int, data []float32) int { return 0 }

func pack6Rows(panel, a []float32, lda, n int) int { return 0 }

func gatherRows(panel, x []float32, tbl, rows []int32) bool { return false }

func gatherPanel(panel, x []float32, cols, rows []int32, groups, h, w int) bool { return false }

var hasGather = false

// hasAVX512 is false without the amd64 assembly (tests switch the
// assembly paths off through it where they exist).
var hasAVX512 = false

func copyRows16(dst, src []float32, ld, n int) { copyRows16Go(dst, src, ld, n) }

func rowSpans(panel, x []float32, rows []uint64) bool { return false }
