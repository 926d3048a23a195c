package nn

// convPacker packs blocks of the im2col matrix of a group of images straight
// into GEMM panels, without materialising the matrix: row r = (ch·KH+ky)·KW+kx
// (or (ky·KW+kx)·C+ch with hwc, the order of a checkpoint-layout kernel's
// rows) and column q = image·OH·OW + y·OW + x hold x[image, ch,
// y·stride-pad+ky, x·stride-pad+kx] (0 in the padding). It produces exactly
// the values Im2Col + packB would, so results do not depend on the path.
type convPacker struct {
	x                   []float32 // the group's images [G,C,H,W]
	c, chw, h, w        int
	kh, kw              int
	stride, pad, oh, ow int
	pix                 int // oh*ow
	pointwise           bool
	hwc                 bool // rows in (ky, kx, ch) order
}

// tap returns the channel and kernel offsets of im2col row r.
func (cp *convPacker) tap(r int) (ch, ky, kx int) {
	if cp.hwc {
		return r % cp.c, r / (cp.c * cp.kw), (r / cp.c) % cp.kw
	}
	return r / (cp.kh * cp.kw), (r / cp.kw) % cp.kh, r % cp.kw
}

// next advances (ch, ky, kx) to the following row.
func (cp *convPacker) next(ch, ky, kx *int) {
	if cp.hwc {
		if *ch++; *ch == cp.c {
			*ch = 0
			if *kx++; *kx == cp.kw {
				*kx = 0
				*ky++
			}
		}
		return
	}
	if *kx++; *kx == cp.kw {
		*kx = 0
		if *ky++; *ky == cp.kh {
			*ky = 0
			*ch++
		}
	}
}

func newConvPacker(x []float32, c, h, w, kh, kw, stride, pad, oh, ow int) convPacker {
	return convPacker{
		x: x, c: c, chw: c * h * w, h: h, w: w, kh: kh, kw: kw,
		stride: stride, pad: pad, oh: oh, ow: ow, pix: oh * ow,
		pointwise: kh == 1 && kw == 1 && stride == 1 && pad == 0,
	}
}

// packB writes rows [p0, p0+kb) × columns [j0, j0+nb) as packB does.
func (cp *convPacker) packB(p0, kb, j0, nb int, dst []float32) {
	for jr := 0; jr < nb; jr += nr {
		nn := min(nr, nb-jr)
		panel := dst[jr*kb : jr*kb+nr*kb]
		q0 := j0 + jr
		img, q := q0/cp.pix, q0%cp.pix
		switch {
		case nn == nr && cp.pointwise && q+nr <= cp.pix:
			// 1x1: row ch is the image plane itself.
			src := cp.x[img*cp.chw+q:]
			hw := cp.h * cp.w
			copyRows16(panel, src[p0*hw:], hw, kb)
		case nn == nr && q%cp.ow+nr <= cp.ow:
			cp.packRow(panel, p0, kb, img, q/cp.ow, q%cp.ow)
		default:
			cp.packAny(panel, p0, kb, q0, nn)
		}
	}
}

// packRow packs a panel whose nr columns are pixels x0.. of output row y of
// one image.
func (cp *convPacker) packRow(panel []float32, p0, kb, img, y, x0 int) {
	hw := cp.h * cp.w
	base := img * cp.chw
	ch, ky, kx := cp.tap(p0)
	iy0 := y*cp.stride - cp.pad
	ix00 := x0*cp.stride - cp.pad
	span := (nr-1)*cp.stride + 1 // input columns one panel row covers
	if cp.rowSpans(panel, p0, kb, base, iy0, ix00) {
		return
	}
	for p := 0; p < kb; p++ {
		d := (*[nr]float32)(panel[p*nr:])
		iy, ix0 := iy0+ky, ix00+kx
		switch {
		case iy < 0 || iy >= cp.h:
			*d = [nr]float32{}
		case ix0 >= 0 && ix0+span <= cp.w:
			row := cp.x[base+ch*hw+iy*cp.w+ix0:]
			if cp.stride == 1 {
				v := *(*[nr]float32)(row)
				*d = v
			} else {
				_ = row[span-1]
				for j := range d {
					d[j] = row[j*cp.stride]
				}
			}
		case cp.stride == 1:
			// A segment across the left or right border: the pixels in
			// the row, zeros for the padding.
			row := cp.x[base+ch*hw+iy*cp.w : base+ch*hw+(iy+1)*cp.w]
			lo, hi := max(0, -ix0), min(nr, cp.w-ix0)
			*d = [nr]float32{}
			if lo < hi {
				copy(d[lo:hi], row[ix0+lo:ix0+hi])
			}
		default:
			row := cp.x[base+ch*hw+iy*cp.w : base+ch*hw+(iy+1)*cp.w]
			for j := range d {
				if ix := ix0 + j*cp.stride; ix >= 0 && ix < cp.w {
					d[j] = row[ix]
				} else {
					d[j] = 0
				}
			}
		}
		cp.next(&ch, &ky, &kx)
	}
}

// rowSpans packs packRow's panel at stride 2 with two masked loads and a
// permute per row where the machine has them (1.5x-2x faster than the
// strided loads, measured; at stride 1 the plain copies are as fast);
// false when it cannot. base is the image's offset in x, iy0 and ix00 the
// first input row and column of the panel's pixels at tap (0, 0).
func (cp *convPacker) rowSpans(panel []float32, p0, kb, base, iy0, ix00 int) bool {
	const st = 2
	// Every unmasked lane stays inside x: a whole image, rows of the
	// matrix, int32 offsets.
	if !hasGather || cp.stride != st || kb > kcMax || p0+kb > cp.kh*cp.kw*cp.c ||
		base+cp.chw > len(cp.x) || len(cp.x) >= 1<<31-1 {
		return false
	}
	hw := cp.h * cp.w
	ch, ky, kx := cp.tap(p0)
	var rows [kcMax]uint64
	for p := range kb {
		iy, ix0 := iy0+ky, ix00+kx
		var off int
		var mask uint64
		if iy >= 0 && iy < cp.h {
			// Lanes j in [lo, hi) read 0 <= ix0+j·st < w.
			lo, hi := 0, min(nr, (cp.w-ix0+st-1)/st)
			if ix0 < 0 {
				lo = (-ix0 + st - 1) / st
			}
			if lo < hi {
				off = base + ch*hw + iy*cp.w + ix0
				mask = (1<<(st*hi) - 1) &^ (1<<(st*lo) - 1) & 0x55555555 // even input lanes
			}
		}
		rows[p] = uint64(uint32(int32(off))) | mask<<32
		cp.next(&ch, &ky, &kx)
	}
	return rowSpans(panel, cp.x, rows[:kb])
}

// packAny packs a panel of nn columns starting at column q0 that may span
// output rows and images (and pads columns past nn with zeros). The input
// offset of every column at every kernel tap is worked out once per call;
// each step then gathers nr values of one channel.
func (cp *convPacker) packAny(panel []float32, p0, kb, q0, nn int) {
	const maxTaps = 49 // 7x7, the root convolution
	khw := cp.kh * cp.kw
	if khw > maxTaps {
		cp.packAnySlow(panel, p0, kb, q0, nn)
		return
	}
	var tbl [maxTaps * nr]int32 // offset in x of (tap, column) at channel 0, -1 in the padding
	for j := 0; j < nr; j++ {
		if j >= nn {
			for t := 0; t < khw; t++ {
				tbl[t*nr+j] = -1
			}
			continue
		}
		img, q := (q0+j)/cp.pix, (q0+j)%cp.pix
		oy, ox := (q/cp.ow)*cp.stride-cp.pad, (q%cp.ow)*cp.stride-cp.pad
		for ky := 0; ky < cp.kh; ky++ {
			for kx := 0; kx < cp.kw; kx++ {
				iy, ix := oy+ky, ox+kx
				off := int32(-1)
				if iy >= 0 && iy < cp.h && ix >= 0 && ix < cp.w {
					off = int32(img*cp.chw + iy*cp.w + ix)
				}
				tbl[(ky*cp.kw+kx)*nr+j] = off
			}
		}
	}
	hw := cp.h * cp.w
	ch, ky, kx := cp.tap(p0)
	if kb <= kcMax && p0+kb <= khw*cp.c && len(cp.x) < 1<<31-1 &&
		(q0+nn-1)/cp.pix < len(cp.x)/cp.chw {
		// Each row's tap (byte offset of its offsets in tbl) and channel
		// start, for one gather per row where the machine has it. (The
		// conditions keep every gathered index inside x, as the scalar
		// loop's bounds checks would.)
		var rows [2 * kcMax]int32
		c, y, x := ch, ky, kx
		for p := 0; p < kb; p++ {
			rows[2*p], rows[2*p+1] = int32((y*cp.kw+x)*nr*4), int32(c*hw)
			cp.next(&c, &y, &x)
		}
		if gatherRows(panel, cp.x, tbl[:], rows[:2*kb]) {
			return
		}
	}
	for p := 0; p < kb; p++ {
		d := (*[nr]float32)(panel[p*nr:])
		offs := (*[nr]int32)(tbl[(ky*cp.kw+kx)*nr:])
		x := cp.x[ch*hw:]
		for j, o := range offs {
			if o >= 0 {
				d[j] = x[o]
			} else {
				d[j] = 0
			}
		}
		cp.next(&ch, &ky, &kx)
	}
}

// packAnySlow is packAny for kernels with more taps than its table holds.
func (cp *convPacker) packAnySlow(panel []float32, p0, kb, q0, nn int) {
	var base, oy, ox [nr]int
	for j := 0; j < nn; j++ {
		img, q := (q0+j)/cp.pix, (q0+j)%cp.pix
		base[j] = img * cp.chw
		oy[j] = (q/cp.ow)*cp.stride - cp.pad
		ox[j] = (q%cp.ow)*cp.stride - cp.pad
	}
	hw := cp.h * cp.w
	ch, ky, kx := cp.tap(p0)
	for p := 0; p < kb; p++ {
		d := (*[nr]float32)(panel[p*nr:])
		for j := 0; j < nn; j++ {
			iy, ix := oy[j]+ky, ox[j]+kx
			if iy >= 0 && iy < cp.h && ix >= 0 && ix < cp.w {
				d[j] = cp.x[base[j]+ch*hw+iy*cp.w+ix]
			} else {
				d[j] = 0
			}
		}
		for j := nn; j < nr; j++ {
			d[j] = 0
		}
		cp.next(&ch, &ky, &kx)
	}
}
