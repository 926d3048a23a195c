package data

import (
	"fmt"
	"image"
	"image/color"
	"math"
	"math/rand/v2"
	"sync"
)

// Luma weights (ITU-R BT.601, as PIL's "L" conversion) used when a colour
// image is turned into a 1-channel tensor.
const (
	lumaR = 0.299
	lumaG = 0.587
	lumaB = 0.114
)

// EvalTensor resizes img (square, bilinear, aspect not kept) to size×size and
// writes it as CHW float32 with the given channel count (1 or 3; gray images
// are replicated to 3 channels, colour converted to luma for 1) into dst,
// which must hold channels*size*size values.
//
// Luma is 0.299 R + 0.587 G + 0.114 B (BT.601, as PIL's "L" mode), computed
// on the interpolated values. Transparent pixels are composited over white. A wrong channel count, a
// non-positive size or a dst of the wrong length is a programmer error and
// panics. An empty image produces the normalised value of black.
func EvalTensor(img image.Image, size, channels int, norm Norm, dst []float32) {
	checkArgs(size, size, channels, dst)
	render(img, size, size, 0, 0, false, channels, norm, dst)
}

// TrainTensor is the BiT train-time preprocessing: resize to preSize×preSize,
// random crop to crop×crop, random horizontal flip, then as EvalTensor.
//
// It draws exactly three values from rng, in this order: the crop's x offset
// rng.IntN(preSize-crop+1), its y offset (same range) and the flip
// rng.IntN(2) == 1, so the result is deterministic for a given rng state.
// The crop is computed without materialising the preSize image.
// crop > preSize panics (programmer error).
func TrainTensor(img image.Image, preSize, crop, channels int, norm Norm, rng *rand.Rand, dst []float32) {
	checkArgs(preSize, crop, channels, dst)
	ox, oy, flip := drawCrop(rng, preSize, crop)
	render(img, preSize, crop, ox, oy, flip, channels, norm, dst)
}

// TrainPreSize is the resize-before-crop size Batch uses for a train crop:
// BiT's 160 for 128, 448 for 384 and 512 for 480; otherwise crop*5/4 for
// crops up to 128 and crop+32 above (256 for 224).
func TrainPreSize(crop int) int {
	switch crop {
	case 128:
		return 160
	case 384:
		return 448
	case 480:
		return 512
	}
	if crop <= 128 {
		return crop * 5 / 4
	}
	return crop + 32
}

func drawCrop(rng *rand.Rand, preSize, crop int) (ox, oy int, flip bool) {
	ox = rng.IntN(preSize - crop + 1)
	oy = rng.IntN(preSize - crop + 1)
	flip = rng.IntN(2) == 1
	return
}

func checkArgs(preSize, crop, channels int, dst []float32) {
	if channels != 1 && channels != 3 {
		panic(fmt.Sprintf("data: channels must be 1 or 3, got %d", channels))
	}
	if crop <= 0 || preSize < crop {
		panic(fmt.Sprintf("data: bad sizes: resize %d, crop %d", preSize, crop))
	}
	if len(dst) != channels*crop*crop {
		panic(fmt.Sprintf("data: dst holds %d values, want %d (%dx%dx%d)", len(dst), channels*crop*crop, channels, crop, crop))
	}
}

// scratch holds the per-call tables and row buffers; pooled so that calls
// do not allocate.
type scratch struct {
	x0, x1 []int
	fx     []float32
	cx0    []int // chroma column offsets of x0/x1 for *image.YCbCr
	cx1    []int
	y0, y1 []int
	fy     []float32
	rows   [2][]float32
	rowY   [2]int
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

// axis fills the bilinear taps for n outputs at positions off..off+n-1 of a
// virtual grid of size pre over a source of length in (half-pixel centres,
// coordinates clamped to the source). When flip is set the outputs are taken
// in reverse order.
func axis(in, pre, off, n int, flip bool, i0, i1 []int, f []float32) {
	scale := float64(in) / float64(pre)
	for i := 0; i < n; i++ {
		g := off + i
		if flip {
			g = off + n - 1 - i
		}
		s := (float64(g)+0.5)*scale - 0.5
		if s < 0 {
			s = 0
		}
		if s > float64(in-1) {
			s = float64(in - 1)
		}
		lo := int(math.Floor(s))
		hi := lo + 1
		if hi > in-1 {
			hi = in - 1
		}
		i0[i], i1[i], f[i] = lo, hi, float32(s-float64(lo))
	}
}

// render is the shared resize/crop/flip/normalise kernel.
func render(img image.Image, pre, crop, ox, oy int, flip bool, channels int, norm Norm, dst []float32) {
	var scale, bias [3]float32
	for c := 0; c < 3; c++ {
		scale[c] = 1 / (255 * norm.Std[c])
		bias[c] = -norm.Mean[c] / norm.Std[c]
	}
	plane := crop * crop
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	if w <= 0 || h <= 0 {
		for c := 0; c < channels; c++ {
			for i := range dst[c*plane : (c+1)*plane] {
				dst[c*plane+i] = bias[c]
			}
		}
		return
	}
	srcCh := 3
	if _, ok := img.(*image.Gray); ok {
		srcCh = 1
	}

	s := scratchPool.Get().(*scratch)
	defer scratchPool.Put(s)
	s.x0, s.x1, s.fx = grow(s.x0, crop), grow(s.x1, crop), grow(s.fx, crop)
	s.y0, s.y1, s.fy = grow(s.y0, crop), grow(s.y1, crop), grow(s.fy, crop)
	axis(w, pre, ox, crop, flip, s.x0, s.x1, s.fx)
	axis(h, pre, oy, crop, false, s.y0, s.y1, s.fy)
	if m, ok := img.(*image.YCbCr); ok {
		s.cx0, s.cx1 = grow(s.cx0, crop), grow(s.cx1, crop)
		for i := 0; i < crop; i++ {
			s.cx0[i] = chromaCol(m, b.Min.X+s.x0[i])
			s.cx1[i] = chromaCol(m, b.Min.X+s.x1[i])
		}
	}
	for k := range s.rows {
		s.rows[k] = grow(s.rows[k], srcCh*crop)
		s.rowY[k] = -1
	}

	// row returns the horizontally interpolated source row y, reusing the
	// cached rows and never evicting the one holding keep.
	row := func(y, keep int) []float32 {
		for k := range s.rowY {
			if s.rowY[k] == y {
				return s.rows[k]
			}
		}
		k := 0
		if s.rowY[0] == keep {
			k = 1
		}
		hrow(img, b, y, s, s.rows[k])
		s.rowY[k] = y
		return s.rows[k]
	}

	for j := 0; j < crop; j++ {
		ra := row(s.y0[j], s.y1[j])
		rb := row(s.y1[j], s.y0[j])
		fy := s.fy[j]
		o := j * crop
		switch {
		case srcCh == 1 && channels == 1:
			out := dst[o : o+crop]
			for i := range out {
				v := ra[i] + (rb[i]-ra[i])*fy
				out[i] = v*scale[0] + bias[0]
			}
		case srcCh == 1: // gray replicated to 3 channels
			o0, o1, o2 := dst[o:o+crop], dst[plane+o:plane+o+crop], dst[2*plane+o:2*plane+o+crop]
			for i := range o0 {
				v := ra[i] + (rb[i]-ra[i])*fy
				o0[i] = v*scale[0] + bias[0]
				o1[i] = v*scale[1] + bias[1]
				o2[i] = v*scale[2] + bias[2]
			}
		case channels == 3:
			for c := 0; c < 3; c++ {
				a, bb := ra[c*crop:(c+1)*crop], rb[c*crop:(c+1)*crop]
				out := dst[c*plane+o : c*plane+o+crop]
				for i := range out {
					v := a[i] + (bb[i]-a[i])*fy
					out[i] = v*scale[c] + bias[c]
				}
			}
		default: // colour to luma
			out := dst[o : o+crop]
			for i := range out {
				r := ra[i] + (rb[i]-ra[i])*fy
				g := ra[crop+i] + (rb[crop+i]-ra[crop+i])*fy
				bl := ra[2*crop+i] + (rb[2*crop+i]-ra[2*crop+i])*fy
				out[i] = (lumaR*r+lumaG*g+lumaB*bl)*scale[0] + bias[0]
			}
		}
	}
}

// hrow interpolates source row y (relative to the bounds' origin) at the
// column taps into out: one plane of len(x0) values for *image.Gray, three
// (R, G, B) for every other type. Common types are read from their pixel
// slices directly.
func hrow(img image.Image, b image.Rectangle, y int, s *scratch, out []float32) {
	x0, x1, fx := s.x0, s.x1, s.fx
	n := len(x0)
	switch m := img.(type) {
	case *image.Gray:
		p := m.Pix[(b.Min.Y+y-m.Rect.Min.Y)*m.Stride+(b.Min.X-m.Rect.Min.X):]
		out = out[:n]
		for i := range out {
			a, c := float32(p[x0[i]]), float32(p[x1[i]])
			out[i] = a + (c-a)*fx[i]
		}
	case *image.RGBA:
		p := m.Pix[(b.Min.Y+y-m.Rect.Min.Y)*m.Stride+(b.Min.X-m.Rect.Min.X)*4:]
		r, g, bl := out[:n], out[n:2*n], out[2*n:3*n]
		for i := 0; i < n; i++ {
			s, t := p[4*x0[i]:4*x0[i]+4], p[4*x1[i]:4*x1[i]+4]
			f := fx[i]
			wa, wb := float32(255-s[3]), float32(255-t[3]) // premultiplied over white
			a := float32(s[0]) + wa
			r[i] = a + (float32(t[0])+wb-a)*f
			a = float32(s[1]) + wa
			g[i] = a + (float32(t[1])+wb-a)*f
			a = float32(s[2]) + wa
			bl[i] = a + (float32(t[2])+wb-a)*f
		}
	case *image.NRGBA:
		p := m.Pix[(b.Min.Y+y-m.Rect.Min.Y)*m.Stride+(b.Min.X-m.Rect.Min.X)*4:]
		for i := 0; i < n; i++ {
			s, t := p[4*x0[i]:4*x0[i]+4], p[4*x1[i]:4*x1[i]+4]
			as, at := float32(s[3])/255, float32(t[3])/255
			for c := 0; c < 3; c++ {
				a := float32(s[c])*as + 255*(1-as)
				z := float32(t[c])*at + 255*(1-at)
				out[c*n+i] = a + (z-a)*fx[i]
			}
		}
	case *image.YCbCr:
		sy := b.Min.Y + y
		yrow := m.Y[m.YOffset(b.Min.X, sy):]
		crow := m.COffset(b.Min.X, sy) - chromaCol(m, b.Min.X)
		cb, cr := m.Cb[crow:], m.Cr[crow:]
		for i := 0; i < n; i++ {
			ca, cc := s.cx0[i], s.cx1[i]
			r0, g0, b0 := yccToRGB(yrow[x0[i]], cb[ca], cr[ca])
			r1, g1, b1 := yccToRGB(yrow[x1[i]], cb[cc], cr[cc])
			f := fx[i]
			out[i] = r0 + (r1-r0)*f
			out[n+i] = g0 + (g1-g0)*f
			out[2*n+i] = b0 + (b1-b0)*f
		}
	default:
		sy := b.Min.Y + y
		for i := 0; i < n; i++ {
			pa := overWhite16(img.At(b.Min.X+x0[i], sy))
			pb := overWhite16(img.At(b.Min.X+x1[i], sy))
			f := fx[i]
			for c := 0; c < 3; c++ {
				out[c*n+i] = pa[c] + (pb[c]-pa[c])*f
			}
		}
	}
}

// overWhite16 composites c over white and returns RGB on the 0..255 scale
// keeping 16-bit precision.
func overWhite16(c color.Color) [3]float32 {
	r, g, b, a := c.RGBA()
	bg := 0xffff - a
	const k = 255.0 / 65535.0
	return [3]float32{float32(r+bg) * k, float32(g+bg) * k, float32(b+bg) * k}
}

// chromaCol is the column part of m.COffset(x, y): COffset(x, y) =
// COffset(m.Rect.Min.X, y) - chromaCol(m, m.Rect.Min.X) + chromaCol(m, x).
func chromaCol(m *image.YCbCr, x int) int {
	switch m.SubsampleRatio {
	case image.YCbCrSubsampleRatio422, image.YCbCrSubsampleRatio420:
		return x/2 - m.Rect.Min.X/2
	case image.YCbCrSubsampleRatio411, image.YCbCrSubsampleRatio410:
		return x/4 - m.Rect.Min.X/4
	}
	return x - m.Rect.Min.X
}

// yccToRGB is the JFIF YCbCr to RGB conversion in float32, clamped to
// [0, 255]; it agrees with color.YCbCrToRGB to within one level.
func yccToRGB(y, cb, cr uint8) (r, g, b float32) {
	fy, fb, fr := float32(y), float32(cb)-128, float32(cr)-128
	r = clamp255(fy + 1.402*fr)
	g = clamp255(fy - 0.344136*fb - 0.714136*fr)
	b = clamp255(fy + 1.772*fb)
	return
}

func clamp255(v float32) float32 {
	return min(max(v, 0), 255)
}
