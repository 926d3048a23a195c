package nn

// Portable versions of the element-wise loops (vec_amd64.s has the AVX2
// ones); the amd64 code also uses them for the last len%16 elements.

func sumF64Go(s []float32) float64 {
	var a0, a1, a2, a3 float64
	i := 0
	for ; i+4 <= len(s); i += 4 {
		q := (*[4]float32)(s[i:])
		a0 += float64(q[0])
		a1 += float64(q[1])
		a2 += float64(q[2])
		a3 += float64(q[3])
	}
	for ; i < len(s); i++ {
		a0 += float64(s[i])
	}
	return (a0 + a1) + (a2 + a3)
}

func sumSqDevGo(s []float32, mean float64) float64 {
	var a0, a1, a2, a3 float64
	i := 0
	for ; i+4 <= len(s); i += 4 {
		q := (*[4]float32)(s[i:])
		d0, d1, d2, d3 := float64(q[0])-mean, float64(q[1])-mean, float64(q[2])-mean, float64(q[3])-mean
		a0 += d0 * d0
		a1 += d1 * d1
		a2 += d2 * d2
		a3 += d3 * d3
	}
	for ; i < len(s); i++ {
		d := float64(s[i]) - mean
		a0 += d * d
	}
	return (a0 + a1) + (a2 + a3)
}

func scaleShiftGo(dst, src []float32, scale, shift float32, relu bool) {
	dst = dst[:len(src)]
	if relu {
		for i, v := range src {
			dst[i] = max(v*scale+shift, 0)
		}
		return
	}
	for i, v := range src {
		dst[i] = v*scale + shift
	}
}

func reluGo(s []float32) {
	for i, v := range s {
		s[i] = max(v, 0)
	}
}

func addGo(dst, src []float32) {
	dst = dst[:len(src)]
	for i, v := range src {
		dst[i] += v
	}
}

func gnSumsGo(dy, x, y []float32, mu float64) (sdy, sdyx float64) {
	x = x[:len(dy)]
	for j, d := range dy {
		if y != nil && y[j] <= 0 {
			continue
		}
		sdy += float64(d)
		sdyx += float64(d) * (float64(x[j]) - mu)
	}
	return sdy, sdyx
}

func gnApplyGo(out, dy, x, y []float32, mu, a, b, c float32) {
	out, x = out[:len(dy)], x[:len(dy)]
	for j, d := range dy {
		v := b*(x[j]-mu) + c
		if y == nil || y[j] > 0 {
			v += a * d
		}
		out[j] = v
	}
}

func colAffineGo(out, g, w, a, b, c []float32, acc bool) {
	out, w, a, b, c = out[:len(g)], w[:len(g)], a[:len(g)], b[:len(g)], c[:len(g)]
	for j, v := range g {
		y := v*a[j] + w[j]*b[j] + c[j]
		if acc {
			y += out[j]
		}
		out[j] = y
	}
}

func transpose16Go(dst, src []float32, ld, n int) {
	for j := 0; j < 16; j++ {
		row := src[j*ld:][:n]
		for p, v := range row {
			dst[p*16+j] = v
		}
	}
}

// wsGradSumsGo is wsGradSums for columns len(sa) of rows ld apart, in Go.
func wsGradSumsGo(sa, sb []float64, g0, g1, w, scale, shift []float32, rows, ld int) {
	n := len(sa)
	for r := 0; r < rows; r++ {
		o := r * ld
		for j := 0; j < n; j++ {
			gs := g0[o+j]
			if g1 != nil {
				gs += g1[o+j]
			}
			ws := w[o+j]*scale[j] + shift[j]
			sa[j] += float64(gs)
			sb[j] += float64(gs) * float64(ws)
		}
	}
}

// wsSGDGo is wsSGDRow in Go.
func wsSGDGo(w, v, g0, g1, scale, shift, b, c []float32, mu, lr, wd float32) {
	v, g0, scale, shift, b, c = v[:len(w)], g0[:len(w)], scale[:len(w)], shift[:len(w)], b[:len(w)], c[:len(w)]
	for j, wj := range w {
		gs := g0[j]
		if g1 != nil {
			gs += g1[j]
		}
		ws := wj*scale[j] + shift[j]
		d := gs*scale[j] + ws*b[j] + c[j]
		v[j] = mu*v[j] + d + wd*wj
		w[j] = wj - lr*v[j]
	}
}

// copyRows16Go is copyRows16 in Go.
func copyRows16Go(dst, src []float32, ld, n int) {
	for p := range n {
		*(*[16]float32)(dst[16*p:]) = *(*[16]float32)(src[p*ld:])
	}
}
