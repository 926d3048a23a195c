package data

import (
	"encoding/binary"
	"image"
	"image/color"
)

// jpegOrientation returns the EXIF orientation (1..8) stored in the APP1
// segment of a JPEG, or 1 when there is none or it cannot be read. Corrupt
// metadata is ignored, never trusted for offsets outside the segment.
func jpegOrientation(b []byte) int {
	if len(b) < 4 || b[0] != 0xFF || b[1] != 0xD8 {
		return 1
	}
	i := 2
	for i+4 <= len(b) {
		if b[i] != 0xFF {
			return 1
		}
		marker := b[i+1]
		switch {
		case marker == 0xFF: // fill byte
			i++
			continue
		case marker == 0xD8 || marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7):
			i += 2 // markers without a length
			continue
		case marker == 0xDA || marker == 0xD9: // start of scan / end: no more headers
			return 1
		}
		n := int(binary.BigEndian.Uint16(b[i+2:]))
		if n < 2 || i+2+n > len(b) {
			return 1
		}
		seg := b[i+4 : i+2+n]
		if marker == 0xE1 && len(seg) >= 6 && string(seg[:6]) == "Exif\x00\x00" {
			if o := tiffOrientation(seg[6:]); o != 0 {
				return o
			}
		}
		i += 2 + n
	}
	return 1
}

// tiffOrientation reads tag 0x0112 from IFD0 of a TIFF structure; 0 when absent
// or invalid.
func tiffOrientation(t []byte) int {
	if len(t) < 8 {
		return 0
	}
	var bo binary.ByteOrder
	switch string(t[:2]) {
	case "II":
		bo = binary.LittleEndian
	case "MM":
		bo = binary.BigEndian
	default:
		return 0
	}
	if bo.Uint16(t[2:]) != 42 {
		return 0
	}
	off := uint64(bo.Uint32(t[4:]))
	if off+2 > uint64(len(t)) {
		return 0
	}
	n := uint64(bo.Uint16(t[off:]))
	for k := uint64(0); k < n; k++ {
		e := off + 2 + 12*k
		if e+12 > uint64(len(t)) {
			return 0
		}
		if bo.Uint16(t[e:]) != 0x0112 {
			continue
		}
		typ, count := bo.Uint16(t[e+2:]), bo.Uint32(t[e+4:])
		var v int
		switch {
		case typ == 3 && count >= 1: // SHORT, stored in the value field
			v = int(bo.Uint16(t[e+8:]))
		case typ == 4 && count >= 1: // LONG (non-standard but seen)
			v = int(bo.Uint32(t[e+8:]))
		default:
			return 0
		}
		if v >= 1 && v <= 8 {
			return v
		}
		return 0
	}
	return 0
}

// orient returns m transformed for display according to EXIF orientation o
// (2..8). m must be *image.Gray, *image.YCbCr or *image.RGBA from normalize.
func orient(m image.Image, o int) image.Image {
	var src []uint8
	var stride, bpp int
	switch v := m.(type) {
	case *image.Gray:
		src, stride, bpp = v.Pix, v.Stride, 1
	case *image.RGBA:
		src, stride, bpp = v.Pix, v.Stride, 4
	default:
		rgba := toRGBA(m)
		src, stride, bpp = rgba.Pix, rgba.Stride, 4
	}
	w, h := m.Bounds().Dx(), m.Bounds().Dy()
	dw, dh := w, h
	if o >= 5 {
		dw, dh = h, w
	}
	var dst []uint8
	var out image.Image
	if bpp == 1 {
		g := image.NewGray(image.Rect(0, 0, dw, dh))
		dst, out = g.Pix, g
	} else {
		r := image.NewRGBA(image.Rect(0, 0, dw, dh))
		dst, out = r.Pix, r
	}
	for y := 0; y < dh; y++ {
		for x := 0; x < dw; x++ {
			var sx, sy int
			switch o {
			case 2:
				sx, sy = w-1-x, y
			case 3:
				sx, sy = w-1-x, h-1-y
			case 4:
				sx, sy = x, h-1-y
			case 5:
				sx, sy = y, x
			case 6:
				sx, sy = y, h-1-x
			case 7:
				sx, sy = w-1-y, h-1-x
			case 8:
				sx, sy = w-1-y, x
			default:
				sx, sy = x, y
			}
			copy(dst[(y*dw+x)*bpp:(y*dw+x+1)*bpp], src[sy*stride+sx*bpp:sy*stride+(sx+1)*bpp])
		}
	}
	return out
}

// toRGBA converts a YCbCr (or any) image to an opaque *image.RGBA at the origin.
func toRGBA(m image.Image) *image.RGBA {
	b := m.Bounds()
	w, h := b.Dx(), b.Dy()
	out := image.NewRGBA(image.Rect(0, 0, w, h))
	if v, ok := m.(*image.YCbCr); ok {
		for y := 0; y < h; y++ {
			dst := out.Pix[y*out.Stride:]
			for x := 0; x < w; x++ {
				yi := v.YOffset(b.Min.X+x, b.Min.Y+y)
				ci := v.COffset(b.Min.X+x, b.Min.Y+y)
				r, g, bb := color.YCbCrToRGB(v.Y[yi], v.Cb[ci], v.Cr[ci])
				dst[4*x], dst[4*x+1], dst[4*x+2], dst[4*x+3] = r, g, bb, 255
			}
		}
		return out
	}
	for y := 0; y < h; y++ {
		dst := out.Pix[y*out.Stride:]
		for x := 0; x < w; x++ {
			p := overWhite(m.At(b.Min.X+x, b.Min.Y+y))
			dst[4*x], dst[4*x+1], dst[4*x+2], dst[4*x+3] = p[0], p[1], p[2], 255
		}
	}
	return out
}
