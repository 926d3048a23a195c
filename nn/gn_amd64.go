//go:build amd64 && !purego

package nn

import "golang.org/x/sys/cpu"

// Implemented in gn_amd64.s; n must be a multiple of 16.
//
//go:noescape
func gnSumsAVX512(dy, x, y *float32, n int, mu float64, relu bool) (sdy, sdyx float64)

//go:noescape
func gnApplyAVX512(out, dy, x, y *float32, n int, mu, a, b, c float32, relu bool)

var hasAVX512 = cpu.X86.HasAVX512F && cpu.X86.HasAVX512DQ

// gnSums returns Σ m·dy and Σ m·dy·(x-mu) in float64, where m is y > 0
// when y is not nil and 1 otherwise.
func gnSums(dy, x, y []float32, mu float64) (sdy, sdyx float64) {
	bulk := len(dy) &^ 15
	if hasAVX512 && bulk > 0 {
		x = x[:len(dy)]
		yp := &x[0] // any valid pointer; unused without relu
		if y != nil {
			y = y[:len(dy)]
			yp = &y[0]
		}
		sdy, sdyx = gnSumsAVX512(&dy[0], &x[0], yp, bulk, mu, y != nil)
		dy, x = dy[bulk:], x[bulk:]
		if y != nil {
			y = y[bulk:]
		}
	}
	a, b := gnSumsGo(dy, x, y, mu)
	return sdy + a, sdyx + b
}

// gnApply sets out = m·a·dy + b·(x-mu) + c, m as in gnSums.
func gnApply(out, dy, x, y []float32, mu, a, b, c float32) {
	bulk := len(dy) &^ 15
	if hasAVX512 && bulk > 0 {
		out, x = out[:len(dy)], x[:len(dy)]
		yp := &x[0]
		if y != nil {
			y = y[:len(dy)]
			yp = &y[0]
		}
		gnApplyAVX512(&out[0], &dy[0], &x[0], yp, bulk, mu, a, b, c, y != nil)
		out, dy, x = out[bulk:], dy[bulk:], x[bulk:]
		if y != nil {
			y = y[bulk:]
		}
	}
	gnApplyGo(out, dy, x, y, mu, a, b, c)
}

//go:noescape
func colAffineAVX512(out, gv, w, a, b, c *float32, n int, acc bool)

// colAffine sets out = g·a + w·b + c element-wise (adds it when acc).
func colAffine(out, g, w, a, b, c []float32, acc bool) {
	bulk := len(g) &^ 15
	if hasAVX512 && bulk > 0 {
		colAffineAVX512(&out[:bulk][0], &g[0], &w[:bulk][0], &a[:bulk][0], &b[:bulk][0], &c[:bulk][0], bulk, acc)
	} else {
		bulk = 0
	}
	colAffineGo(out[bulk:], g[bulk:], w[bulk:], a[bulk:], b[bulk:], c[bulk:], acc)
}

//go:noescape
func transpose16AVX512(dst, src *float32, ld, n int)

// transpose16 sets dst[p*16+j] = src[j*ld+p] for j < 16 and p < n.
func transpose16(dst, src []float32, ld, n int) {
	if n == 0 {
		return
	}
	_ = dst[16*n-1]
	_ = src[15*ld+n-1]
	bulk := n &^ 15
	if hasAVX512 && bulk > 0 {
		transpose16AVX512(&dst[0], &src[0], ld, bulk)
	} else {
		bulk = 0
	}
	transpose16Go(dst[16*bulk:], src[bulk:], ld, n-bulk)
}

//go:noescape
func wsGradSumsAVX512(sav, sbv *float64, g0, g1, w, scale, shift *float32, rows, ldb, n int, two bool)

//go:noescape
func wsSGDAVX512(w, v, g0, g1, scale, shift, b, c *float32, n int, mu, lr, wd float32, two bool)

// wsGradSums adds, for each column j < len(sa) of the rows×len(sa) blocks
// (rows ld apart), Σ gs to sa[j] and Σ gs·ws to sb[j] in float64, where gs
// = g0 (+ g1 when not nil) and ws = w·scale + shift.
func wsGradSums(sa, sb []float64, g0, g1, w, scale, shift []float32, rows, ld int) {
	n := len(sa)
	if rows == 0 || n == 0 {
		return
	}
	last := (rows-1)*ld + n - 1
	_, _, _, _ = g0[last], w[last], scale[n-1], shift[n-1]
	two := g1 != nil
	g1p := &g0[0]
	if two {
		_ = g1[last]
		g1p = &g1[0]
	}
	bulk := n &^ 15
	if hasAVX512 && bulk > 0 {
		// Blocks of a few rows (4 measured best: 0.24-0.32 ns per value
		// on 4608x512 and 512x2048 against 0.39-0.47 with 16 and 1.0 with
		// all rows): one stream per row, each read a cache line at a time
		// from left to right, the column sums stored once per block.
		const rowBlock = 4
		for r := 0; r < rows; r += rowBlock {
			o := r * ld
			if two {
				g1p = &g1[o]
			}
			wsGradSumsAVX512(&sa[0], &sb[:n][0], &g0[o], g1p, &w[o], &scale[0], &shift[0], min(rowBlock, rows-r), 4*ld, bulk, two)
		}
	} else {
		bulk = 0
	}
	if g1 != nil {
		g1 = g1[bulk:]
	}
	wsGradSumsGo(sa[bulk:n], sb[bulk:n], g0[bulk:], g1, w[bulk:], scale[bulk:n], shift[bulk:n], rows, ld)
}

// wsSGDRow is one row of StandardizedSGD (see wsSGDAVX512).
func wsSGDRow(w, v, g0, g1, scale, shift, b, c []float32, mu, lr, wd float32) {
	n := len(w)
	bulk := n &^ 15
	if hasAVX512 && bulk > 0 {
		_, _, _, _, _, _ = v[n-1], g0[n-1], scale[n-1], shift[n-1], b[n-1], c[n-1]
		g1p, two := &g0[0], g1 != nil
		if two {
			_ = g1[n-1]
			g1p = &g1[0]
		}
		wsSGDAVX512(&w[0], &v[0], &g0[0], g1p, &scale[0], &shift[0], &b[0], &c[0], bulk, mu, lr, wd, two)
	} else {
		bulk = 0
	}
	if g1 != nil {
		g1 = g1[bulk:]
	}
	wsSGDGo(w[bulk:], v[bulk:], g0[bulk:], g1, scale[bulk:], shift[bulk:], b[bulk:], c[bulk:], mu, lr, wd)
}

//go:noescape
func packTrans6AVX512(dst, src *float32, ldb, rows, panels, stride int)

// packTransFull packs rows q0..q1-1 of a (row q at a[(q-q0)·lda]) into
// steps q0..q1-1 of the first full panels of data (depth k); it returns how
// many panels it packed (none without AVX-512).
func packTransFull(a []float32, lda, m, q0, q1, k int, data []float32) int {
	panels := m / mr
	if !hasAVX512 || panels == 0 || q1 <= q0 {
		return 0
	}
	_ = a[(q1-q0-1)*lda+panels*mr-1]
	_ = data[(panels-1)*mr*k+q1*mr-1]
	packTrans6AVX512(&data[q0*mr], &a[0], 4*lda, q1-q0, panels, 4*mr*k)
	return panels
}

//go:noescape
func pack6RowsAVX512(dst, src *float32, ldb, n int)

// pack6Rows interleaves the first steps of 6 rows of a (lda apart) into
// panel (panel[6p+r] = a[r·lda+p]) and returns how many steps it packed (a
// multiple of 8 up to n; none without AVX-512).
func pack6Rows(panel, a []float32, lda, n int) int {
	bulk := n &^ 7
	if !hasAVX512 || bulk == 0 {
		return 0
	}
	_ = a[5*lda+bulk-1]
	_ = panel[mr*bulk-1]
	pack6RowsAVX512(&panel[0], &a[0], 4*lda, bulk)
	return bulk
}

//go:noescape
func gatherRowsAVX512(dst, x *float32, tbl *int32, rows *int32, n int)

// gatherRows packs len(rows)/2 panel rows of nr values with one masked
// gather each (see gatherRowsAVX512); false, with nothing written, where
// AVX-512 is missing. Every offset base+off[j] with off[j] >= 0 must lie in
// x.
func gatherRows(panel, x []float32, tbl, rows []int32) bool {
	n := len(rows) / 2
	if !hasGather || n == 0 {
		return false
	}
	_ = panel[n*nr-1]
	gatherRowsAVX512(&panel[0], &x[0], &tbl[0], &rows[0], n)
	return true
}

//go:noescape
func gatherPanelAVX512(dst, x *float32, cols, rows *int32, groups, h, w int)

// gatherPanel packs an A panel of mr rows over 16·groups steps with masked
// gathers (see gatherPanelAVX512 for cols and rows); false, with nothing
// written, where AVX-512 is missing. Every in-bounds index must lie in x.
func gatherPanel(panel, x []float32, cols, rows []int32, groups, h, w int) bool {
	if !hasGather || groups == 0 {
		return false
	}
	_ = panel[groups*16*mr-1]
	_ = cols[groups*48-1]
	_ = rows[3*mr*16-1]
	gatherPanelAVX512(&panel[0], &x[0], &cols[0], &rows[0], groups, h, w)
	return true
}

// hasGather reports whether gatherRows and gatherPanel run here.
var hasGather = hasAVX512

//go:noescape
func copyRows16AVX512(dst, src *float32, ld, n int)

// copyRows16 copies the first 16 values of n rows of src (ld apart) to
// dst, one row after another.
func copyRows16(dst, src []float32, ld, n int) {
	if n == 0 {
		return
	}
	_ = src[(n-1)*ld+15]
	_ = dst[16*n-1]
	if hasAVX512 {
		copyRows16AVX512(&dst[0], &src[0], 4*ld, n)
		return
	}
	copyRows16Go(dst, src, ld, n)
}

//go:noescape
func rowSpansAVX512(dst, x *float32, rows *uint64, n int)

// rowSpans packs len(rows) stride-2 panel rows of 16 values with masked
// loads (see rowSpansAVX512); false, with nothing written, where AVX-512
// is missing. Every unmasked lane must lie in x.
func rowSpans(panel, x []float32, rows []uint64) bool {
	if !hasGather || len(rows) == 0 {
		return false
	}
	_ = panel[16*len(rows)-1]
	rowSpansAVX512(&panel[0], &x[0], &rows[0], len(rows))
	return true
}
