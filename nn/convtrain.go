package nn

import "fmt"

// The training engine's convolutions take kernels in the checkpoint layout
// [KH,KW,C,O] (HWIO), the layout the optimiser updates, so that no kernel is
// transposed in a training step. They run on this package's own GEMM
// whatever backend is selected: every product packs its panels straight from
// the NCHW tensors, and no im2col matrix, transposed kernel or transposed dY
// is built (an external BLAS takes only plain matrices).
//
// With K = KH·KW·C in (ky, kx, ch) order, the rows of the HWIO kernel:
//
//   - forward: Y = Wᵀ · patches(x), Wᵀ packed once per call;
//   - dW [K, O] (+)= patches(x) · dYᵀ over every pixel of every image
//     (patchRows · patchCols), written in HWIO;
//   - dX of a stride-1 convolution is dY convolved with the kernel flipped
//     and transposed (packed straight from W), the forward path again;
//   - dX of a strided convolution is col2im(W · dY).

// HWIOKernel is a checkpoint-layout kernel [KH,KW,C,O] with the GEMM
// operands a training step builds from it, packed once and shared by every
// convolution that uses it in the step (the batch-parallel replicas
// included). Make it with PrepareHWIO; it is read-only afterwards.
type HWIOKernel struct {
	W *Tensor
	// WS is the standardisation the kernel was made with
	// (StandardizePrepareHWIO: W is then the raw kernel and the packed
	// operands are of W·Scale + Shift); zero for PrepareHWIO.
	WS WS

	fwd *packedA // Wᵀ (O × K): the forward
	dx  *packedA // the input gradient's left operand; nil when not needed
}

// PrepareHWIO packs w for convolutions of the given stride and padding: the
// forward operand, and the input gradient's when dx is set. The packed
// panels come from a and live until a is reset past them.
func PrepareHWIO(w *Tensor, stride, pad int, dx bool, a *Arena) *HWIOKernel {
	kh, kw, c, o := dims4(w)
	k := &HWIOKernel{W: w}
	k.fwd = packAllArena(a, true, w.Data, o, o, kh*kw*c) // op(A) = wᵀ: O × K
	if dx {
		k.dx = packDX(w, stride, pad, a)
	}
	return k
}

// packDX packs the input gradient's left operand of w: the flipped kernel
// for stride-1 convolutions, else w itself (K × O) for col2im.
func packDX(w *Tensor, stride, pad int, a *Arena) *packedA {
	kh, kw, c, o := dims4(w)
	if flippedDX(kh, kw, stride, pad) {
		return packFlippedArena(a, w)
	}
	return packAllArena(a, false, w.Data, o, kh*kw*c, o) // op(A) = w: K × O
}

// flippedDX reports whether the input gradient is a stride-1 convolution
// with the flipped kernel (else it is col2im of a product).
func flippedDX(kh, kw, stride, pad int) bool { return stride == 1 && kh == kw && pad <= kh-1 }

// ConvHWIOInto writes the convolution of x [N,C,H,W] with k (no bias) into
// dst [N,O,OH,OW]. Scratch comes from a.
func ConvHWIOInto(dst, x *Tensor, k *HWIOKernel, stride, pad int, a *Arena) {
	w := k.W
	n, _, oh, ow := convHWIOShape("ConvHWIOInto", x, w, stride, pad)
	kh, kw, o := w.Shape[0], w.Shape[1], w.Shape[3]
	if !SameShape(dst.Shape, []int{n, o, oh, ow}) {
		panic(fmt.Sprintf("nn: ConvHWIOInto: x %v, w %v, dst %v", x.Shape, w.Shape, dst.Shape))
	}
	if n == 0 || o == 0 {
		return
	}
	convPanels(dst, x, k.fwd, kh, kw, stride, pad, true, convGroup(n, oh*ow), a)
}

// ConvHWIOBackward is the backward of ConvHWIOInto(y, x, k, stride, pad):
// from dy [N,O,OH,OW] it writes dx [N,C,H,W] and dw [KH,KW,C,O] (added to
// when accumulate is set). A nil dx or dw is not computed; dx needs k
// prepared with dx set.
func ConvHWIOBackward(x *Tensor, k *HWIOKernel, dy *Tensor, stride, pad int, dx, dw *Tensor, accumulate bool, a *Arena) {
	w := k.W
	n, c, oh, ow := convHWIOShape("ConvHWIOBackward", x, w, stride, pad)
	kh, kw, o := w.Shape[0], w.Shape[1], w.Shape[3]
	h, wd := x.Shape[2], x.Shape[3]
	if !SameShape(dy.Shape, []int{n, o, oh, ow}) ||
		(dx != nil && !SameShape(dx.Shape, x.Shape)) || (dw != nil && !SameShape(dw.Shape, w.Shape)) {
		panic(fmt.Sprintf("nn: ConvHWIOBackward: x %v, w %v, dy %v, dx %v, dw %v", x.Shape, w.Shape, dy.Shape, dx, dw))
	}
	if dx != nil && k.dx == nil {
		panic("nn: ConvHWIOBackward: kernel prepared without the input gradient's operand")
	}
	pix, kd := oh*ow, kh*kw*c
	if dw != nil {
		beta := float32(0)
		if accumulate {
			beta = 1
		}
		xp := newConvPacker(x.Data, c, h, wd, kh, kw, stride, pad, oh, ow)
		xp.hwc = true
		rows := patchRows{xp}
		cols := patchCols{newConvPacker(dy.Data, o, oh, ow, 1, 1, 1, 0, oh, ow)}
		splitProduct(kd, o, n*pix, func(i0, mb, j0, nb int) {
			gemmCore(mb, nb, n*pix, &rows, i0, &cols, j0, beta, dw.Data[i0*o+j0:], o)
		})
	}
	if dx == nil || n == 0 {
		return
	}
	if flippedDX(kh, kw, stride, pad) {
		// dX = dY convolved with w flipped and transposed, padded by kh-1-pad.
		convPanels(dx, dy, k.dx, kh, kw, 1, kh-1-pad, true, convGroup(n, h*wd), a)
		return
	}
	m := a.Mark()
	defer a.Release(m)
	chunk := convChunk(n, kd, pix)
	dcol := a.Get(kd * chunk * pix)
	for b0 := 0; b0 < n; b0 += chunk {
		cn := min(chunk, n-b0)
		ld := cn * pix
		packer := newConvPacker(dy.Data[b0*o*pix:(b0+cn)*o*pix], o, oh, ow, 1, 1, 1, 0, oh, ow)
		splitProduct(kd, ld, o, func(i0, mb, j0, nb int) {
			gemmCore(mb, nb, o, k.dx, i0, &packer, j0, 0, dcol.Data[i0*ld+j0:], ld)
		})
		ParallelFor(cn, func(i int) {
			xb := dx.Data[(b0+i)*c*h*wd:][:c*h*wd]
			clear(xb)
			col2imAdd(dcol.Data[i*pix:], ld, c, h, wd, kh, kw, stride, pad, oh, ow, true, xb)
		})
	}
}

// convHWIOShape checks a checkpoint-layout convolution's operands and returns
// N, C, OH, OW; it panics on a mismatch (a programmer error).
func convHWIOShape(op string, x, w *Tensor, stride, pad int) (n, c, oh, ow int) {
	n, c, h, wd := dims4(x)
	kh, kw, ci, _ := dims4(w)
	if ci != c || stride < 1 || pad < 0 || kh < 1 || kw < 1 || h+2*pad < kh || wd+2*pad < kw {
		panic(fmt.Sprintf("nn: %s: x %v, w %v, stride %d, pad %d", op, x.Shape, w.Shape, stride, pad))
	}
	return n, c, ConvOutSize(h, kh, stride, pad), ConvOutSize(wd, kw, stride, pad)
}

// packFlippedArena packs the left operand of the stride-1 input gradient:
// op(A)[ch, (ky·KW+kx)·O+o] = w[KH-1-ky, KW-1-kx, ch, o], rows ch of w's
// taps read in reverse.
func packFlippedArena(a *Arena, w *Tensor) *packedA {
	kh, kw, c, o := dims4(w)
	khw, k := kh*kw, kh*kw*o
	p := &packedA{data: a.Get(packedLen(c, k)).Data, m: c, k: k}
	panels := (c + mr - 1) / mr
	ParallelFor(panels, func(pi int) {
		c0 := pi * mr
		mm := min(mr, c-c0)
		panel := p.data[pi*mr*k : (pi+1)*mr*k]
		for t := 0; t < khw; t++ {
			// Tap t of the flipped kernel is tap khw-1-t of w: rows c0.. of
			// that tap's C × O block.
			packA(false, w.Data[(khw-1-t)*c*o:(khw-t)*c*o], o, c0, mm, 0, o, panel[t*o*mr:])
		}
	})
	return p
}

// rowSeg writes im2col row r for columns q0..q0+cnt-1 into out[i·step].
func (cp *convPacker) rowSeg(r, q0, cnt int, out []float32, step int) {
	ch, ky, kx := cp.tap(r)
	hw := cp.h * cp.w
	if cp.pointwise {
		for i := 0; i < cnt; {
			img, p := (q0+i)/cp.pix, (q0+i)%cp.pix
			run := min(cp.pix-p, cnt-i)
			src := cp.x[img*cp.chw+ch*hw+p:][:run]
			d := out[i*step:]
			for t, v := range src {
				d[t*step] = v
			}
			i += run
		}
		return
	}
	img, p := q0/cp.pix, q0%cp.pix
	y, xo := p/cp.ow, p%cp.ow
	for i := 0; i < cnt; {
		run := min(cp.ow-xo, cnt-i) // the rest of this output row
		d := out[i*step:]
		if iy := y*cp.stride - cp.pad + ky; iy < 0 || iy >= cp.h {
			for t := 0; t < run; t++ {
				d[t*step] = 0
			}
		} else {
			row := cp.x[img*cp.chw+ch*hw+iy*cp.w:][:cp.w]
			// Outputs t in [lo, hi) read inside the row: 0 <= ix0+t·stride < w.
			ix0, st := xo*cp.stride-cp.pad+kx, cp.stride
			lo, hi := 0, 0
			if ix0 < 0 {
				lo = (-ix0 + st - 1) / st
			}
			if cp.w > ix0 {
				hi = min(run, (cp.w-ix0+st-1)/st)
			}
			lo = min(lo, hi)
			for t := 0; t < lo; t++ {
				d[t*step] = 0
			}
			if st == 1 {
				if lo < hi { // else the whole run is padding, maybe past the row's start
					for t, v := range row[ix0+lo : ix0+hi] {
						d[(lo+t)*step] = v
					}
				}
			} else {
				for t := lo; t < hi; t++ {
					d[t*step] = row[ix0+t*st]
				}
			}
			for t := hi; t < run; t++ {
				d[t*step] = 0
			}
		}
		i += run
		img, y, xo = cp.advance(img, y, xo, run)
	}
}

// patchRows is the im2col matrix of a batch as a left operand: K rows,
// N·OH·OW steps, packed into the scratch panels.
type patchRows struct{ cp convPacker }

func (t *patchRows) panels(i0, mb, p0, kb int, dst []float32) ([]float32, int) {
	var g panelGather
	for ir := 0; ir < mb; ir += mr {
		mm := min(mr, mb-ir)
		panel := dst[ir*kb : ir*kb+mr*kb]
		if mm == mr && t.cp.pointwise {
			t.cp.packRowsPointwise(i0+ir, p0, kb, panel)
			continue
		}
		if g.pack(&t.cp, i0+ir, mm, p0, kb, panel) {
			continue
		}
		if ch, _, _ := t.cp.tap(i0 + ir); mm == mr && t.cp.hwc && ch+mr <= t.cp.c {
			t.cp.packRowsTap(i0+ir, p0, kb, panel) // mr channels of one tap
			continue
		}
		if mm < mr {
			clear(panel)
		}
		for r := 0; r < mm; r++ {
			t.cp.rowSeg(i0+ir+r, p0, kb, panel[r:], mr)
		}
	}
	return dst, mr * kb
}

// panelGather packs A panels of the im2col matrix with one masked gather
// per 16 values (gatherPanel), where the machine has them: for kernels
// wider than 1x1, whose rows read each column at its own offset. The
// columns' offsets are worked out once for all panels of a block.
type panelGather struct {
	cols  [48 * kcMax / 16]int32 // per group of 16 columns: image offset, first input row, first input column
	ready bool
	off   bool // no gathers (missing, a block deeper than kcMax, or a tensor too large for int32 offsets)
}

// pack packs rows r0..r0+mm-1 over columns p0..p0+kb-1 into panel; false
// when it cannot (the caller packs the panel another way).
func (g *panelGather) pack(cp *convPacker, r0, mm, p0, kb int, panel []float32) bool {
	if g.off {
		return false
	}
	if r0+mm > cp.kh*cp.kw*cp.c {
		return false // a row past the matrix: the scalar packer reports it
	}
	if !g.ready {
		// Every gathered index stays inside x: columns of whole images in
		// it, rows of its channels (checked above), offsets that fit int32.
		if !hasGather || kb > kcMax || len(cp.x) >= 1<<31-1 || (p0+kb-1)/cp.pix >= len(cp.x)/cp.chw {
			g.off = true
			return false
		}
		cp.gatherCols(p0, kb, g.cols[:])
		g.ready = true
	}
	var rows [3 * mr * 16]int32
	var ch, ky, kx [mr]int32
	for r := range mr {
		if r < mm {
			c, y, x := cp.tap(r0 + r)
			ch[r], ky[r], kx[r] = int32(c*cp.h*cp.w+y*cp.w+x), int32(y), int32(x)
		} else {
			ky[r] = 1 << 30 // outside every image: a zero row
		}
	}
	for v := range mr * 16 {
		r := v % mr
		rows[v], rows[mr*16+v], rows[2*mr*16+v] = ch[r], ky[r], kx[r]
	}
	full := kb / 16
	gatherPanel(panel, cp.x, g.cols[:], rows[:], full, cp.h, cp.w)
	if tail := kb - 16*full; tail > 0 {
		var last [16 * mr]float32
		gatherPanel(last[:], cp.x, g.cols[48*full:], rows[:], 1, cp.h, cp.w)
		copy(panel[16*full*mr:kb*mr], last[:tail*mr])
	}
	return true
}

// gatherCols writes gatherPanel's column table for columns p0..p0+kb-1
// into cols: per group of 16, each column's image offset moved to its first
// input row and column (y·stride-pad, x·stride-pad, which may be
// negative), then those rows, then those columns; columns past kb read as
// outside.
func (cp *convPacker) gatherCols(p0, kb int, cols []int32) {
	groups := (kb + 15) / 16
	for g := range groups {
		for j := range 16 {
			cols[48*g+16+j] = 1 << 30
		}
	}
	img, p := p0/cp.pix, p0%cp.pix
	y, xo := p/cp.ow, p%cp.ow
	for q := range kb {
		iy, ix := y*cp.stride-cp.pad, xo*cp.stride-cp.pad
		g, j := q/16, q%16
		cols[48*g+j] = int32(img*cp.chw + iy*cp.w + ix)
		cols[48*g+16+j], cols[48*g+32+j] = int32(iy), int32(ix)
		img, y, xo = cp.advance(img, y, xo, 1)
	}
}

// patchCols is the im2col matrix of a batch transposed, as a right operand:
// N·OH·OW steps, K columns. Over a 1x1 packer it reads a tensor [N,C,P] as
// the N·P × C matrix.
type patchCols struct{ cp convPacker }

func (t *patchCols) packB(p0, kb, j0, nb int, dst []float32) {
	for jr := 0; jr < nb; jr += nr {
		nn := min(nr, nb-jr)
		panel := dst[jr*kb : jr*kb+nr*kb]
		if nn == nr && t.cp.pointwise {
			t.cp.packColsPointwise(j0+jr, p0, kb, panel)
			continue
		}
		if nn < nr {
			clear(panel)
		}
		for j := 0; j < nn; j++ {
			t.cp.rowSeg(j0+jr+j, p0, kb, panel[j:], nr)
		}
	}
}

// packRowsPointwise packs channels ch0..ch0+mr-1 of a 1x1 packer's images
// over columns p0..p0+kb-1 as one A panel (mr values per step).
func (cp *convPacker) packRowsPointwise(ch0, p0, kb int, panel []float32) {
	hw := cp.pix
	for q := p0; q < p0+kb; {
		img, p := q/hw, q%hw
		run := min(hw-p, p0+kb-q)
		base := img*cp.chw + ch0*hw + p
		d := panel[(q-p0)*mr:]
		if hw == 1 { // one pixel per image: the channels are contiguous
			v := *(*[mr]float32)(cp.x[base:])
			*(*[mr]float32)(d) = v
			q++
			continue
		}
		r0 := cp.x[base:][:run]
		r1 := cp.x[base+hw:][:run]
		r2 := cp.x[base+2*hw:][:run]
		r3 := cp.x[base+3*hw:][:run]
		r4 := cp.x[base+4*hw:][:run]
		r5 := cp.x[base+5*hw:][:run]
		for j := pack6Rows(d, cp.x[base:], hw, run); j < run; j++ {
			s := d[j*mr : j*mr+mr : j*mr+mr]
			s[0], s[1], s[2], s[3], s[4], s[5] = r0[j], r1[j], r2[j], r3[j], r4[j], r5[j]
		}
		q += run
	}
}

// packColsPointwise packs channels ch0..ch0+nr-1 of a 1x1 packer's images
// over rows p0..p0+kb-1 as one B panel (nr values per step): a 16-row
// transpose per image.
func (cp *convPacker) packColsPointwise(ch0, p0, kb int, panel []float32) {
	hw := cp.pix
	for q := p0; q < p0+kb; {
		img, p := q/hw, q%hw
		run := min(hw-p, p0+kb-q)
		src := cp.x[img*cp.chw+ch0*hw+p:]
		d := panel[(q-p0)*nr:]
		if hw == 1 {
			v := *(*[nr]float32)(src)
			*(*[nr]float32)(d) = v
			q++
			continue
		}
		transpose16(d, src, hw, run)
		q += run
	}
}

// packRowsTap packs rows r..r+mr-1 (hwc order: channels ch..ch+mr-1 of one
// kernel tap) over columns p0..p0+kb-1 as one A panel: the input offset of
// every column is worked out once for all mr channels.
func (cp *convPacker) packRowsTap(r, p0, kb int, panel []float32) {
	ch, ky, kx := cp.tap(r)
	hw := cp.h * cp.w
	img, p := p0/cp.pix, p0%cp.pix
	y, xo := p/cp.ow, p%cp.ow
	for i := 0; i < kb; {
		run := min(cp.ow-xo, kb-i) // the rest of this output row
		d := panel[i*mr : (i+run)*mr]
		if iy := y*cp.stride - cp.pad + ky; iy < 0 || iy >= cp.h {
			clear(d)
		} else {
			base := img*cp.chw + ch*hw + iy*cp.w
			ix0, st := xo*cp.stride-cp.pad+kx, cp.stride
			for t := 0; t < run; t++ {
				s := d[t*mr : t*mr+mr : t*mr+mr]
				ix := ix0 + t*st
				if ix < 0 || ix >= cp.w {
					s[0], s[1], s[2], s[3], s[4], s[5] = 0, 0, 0, 0, 0, 0
					continue
				}
				src := cp.x[base+ix:]
				_ = src[5*hw]
				s[0], s[1], s[2], s[3], s[4], s[5] = src[0], src[hw], src[2*hw], src[3*hw], src[4*hw], src[5*hw]
			}
		}
		i += run
		img, y, xo = cp.advance(img, y, xo, run)
	}
}

// advance moves the output pixel (img, y, xo) on by run pixels that end at
// or before the end of its row.
func (cp *convPacker) advance(img, y, xo, run int) (int, int, int) {
	if xo += run; xo == cp.ow {
		xo = 0
		if y++; y == cp.oh {
			y = 0
			img++
		}
	}
	return img, y, xo
}
