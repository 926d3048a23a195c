package data

import (
	"encoding/binary"
	"fmt"
)

// JPEG decode-cost bounds. A JPEG's header says how many pixels it has, but
// not what decoding it costs: a progressive stream may hold hundreds of scans
// that each walk the whole frame (end-of-band runs code 32767 blocks in two
// bytes), and a decoder keeps every coefficient of a progressive frame in
// memory until the last scan. checkJPEGCost reads the markers (no entropy
// decoding) and refuses streams over these bounds before any decoder,
// libjpeg-turbo or image/jpeg, allocates anything:
const (
	// MaxJPEGScans is the most scans (SOS segments) a JPEG may hold.
	// Encoders write 1 (baseline) to about 10-20 (progressive scripts);
	// libjpeg-turbo's own denial-of-service limit is 500.
	MaxJPEGScans = 100
	// maxJPEGPasses bounds the decoding work: the blocks the scans walk,
	// summed over scans, may be at most this many times the frame's blocks
	// (standard progressive scripts walk each block 3-8 times).
	maxJPEGPasses = 16
	// maxCoefBytesPerPixel bounds a progressive frame's coefficient buffer
	// (image/jpeg keeps 64 int32s per 8x8 block of every component, 4 bytes
	// per sample) against the pixel cap: 8 bytes per allowed pixel lets a
	// 4:2:0 stream (6 bytes per pixel, plus padding to whole MCUs) reach the
	// whole cap and a 4:4:4 one (12) two thirds of it.
	maxCoefBytesPerPixel = 8
	// minBitsPerBlock: every block of a valid stream is coded with at least
	// one bit (its DC coefficient), so a frame cannot have more blocks than
	// 8 per byte of entropy-coded data. This ties memory and work to the
	// size of the upload, not only to the pixel cap.
	blocksPerEntropyByte = 8
)

// DecodeCostError is the error of an image whose decoding would cost more
// than the bounds allow (too many scans, too much coefficient memory or work,
// or far more blocks than its coded data can describe). It is found from the
// markers before decoding and wraps ErrBadImage.
type DecodeCostError struct {
	Format string // "jpeg"
	What   string // "scans", "coefficient bytes", "block visits", "blocks for the coded data"
	Value  int64
	Limit  int64
}

func (e *DecodeCostError) Error() string {
	return fmt.Sprintf("%v: %s image needs %d %s, over the limit of %d (decode-cost bound)",
		ErrBadImage, e.Format, e.Value, e.What, e.Limit)
}

func (e *DecodeCostError) Unwrap() error { return ErrBadImage }

// jpegComponent is one component of a frame header.
type jpegComponent struct {
	id   byte
	h, v int // sampling factors
}

// jpegLayout is what a JPEG stream's markers say about decoding it.
type jpegLayout struct {
	width, height int
	progressive   bool
	comps         []jpegComponent
	scans         int
	visits        int64 // blocks walked, summed over scans
	entropyBytes  int64 // bytes of entropy-coded data over all scans
}

// blocks returns the frame's blocks per component: coded (the blocks of the
// component's own size, what a scan of it alone walks) and allocated (padded
// to whole MCUs, what a decoder keeps per component).
func (l *jpegLayout) blocks(i int) (coded, allocated int64) {
	hmax, vmax := 1, 1
	for _, c := range l.comps {
		hmax, vmax = max(hmax, c.h), max(vmax, c.v)
	}
	c := l.comps[i]
	cw := (int64(l.width)*int64(c.h) + int64(hmax) - 1) / int64(hmax)
	ch := (int64(l.height)*int64(c.v) + int64(vmax) - 1) / int64(vmax)
	coded = ((cw + 7) / 8) * ((ch + 7) / 8)
	mx := (int64(l.width) + 8*int64(hmax) - 1) / (8 * int64(hmax))
	my := (int64(l.height) + 8*int64(vmax) - 1) / (8 * int64(vmax))
	return coded, mx * int64(c.h) * my * int64(c.v)
}

// parseJPEGLayout walks the marker segments of b (which starts with SOI).
// It stops quietly at the first thing it does not understand or at a
// truncation: the decoders report those; the layout then covers what was
// read, which only makes the bounds more lenient for a stream that fails
// anyway.
func parseJPEGLayout(b []byte) jpegLayout {
	var l jpegLayout
	i := 2
	for i+1 < len(b) {
		if b[i] != 0xFF {
			return l
		}
		m := b[i+1]
		switch {
		case m == 0xFF: // fill byte
			i++
			continue
		case m == 0xD9: // EOI
			return l
		case m == 0x01 || m >= 0xD0 && m <= 0xD7: // standalone markers
			i += 2
			continue
		}
		if i+4 > len(b) {
			return l
		}
		n := int(binary.BigEndian.Uint16(b[i+2:]))
		if n < 2 || i+2+n > len(b) {
			return l
		}
		seg := b[i+4 : i+2+n]
		i += 2 + n
		switch {
		case m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC: // SOFn
			if l.comps != nil || len(seg) < 6 {
				// A second frame header: decoders refuse it; keep the first.
				continue
			}
			l.progressive = m == 0xC2 || m == 0xC6 || m == 0xCA || m == 0xCE
			l.height = int(binary.BigEndian.Uint16(seg[1:]))
			l.width = int(binary.BigEndian.Uint16(seg[3:]))
			nc := int(seg[5])
			if len(seg) < 6+3*nc {
				return l
			}
			l.comps = make([]jpegComponent, nc)
			for k := range nc {
				s := seg[6+3*k:]
				l.comps[k] = jpegComponent{id: s[0], h: max(int(s[1]>>4), 1), v: max(int(s[1]&15), 1)}
			}
		case m == 0xDA: // SOS, then entropy-coded data up to the next marker
			l.scans++
			if len(seg) >= 1 && l.comps != nil {
				ns := int(seg[0])
				for k := 0; k < ns && 1+2*k < len(seg); k++ {
					for ci, c := range l.comps {
						if c.id == seg[1+2*k] {
							coded, _ := l.blocks(ci)
							l.visits += coded
							break
						}
					}
				}
			}
			start := i
			for i+1 < len(b) {
				if b[i] != 0xFF {
					i++
					continue
				}
				if nx := b[i+1]; nx == 0x00 || nx >= 0xD0 && nx <= 0xD7 {
					i += 2 // stuffed zero or restart marker: still scan data
					continue
				}
				if b[i+1] == 0xFF {
					i++
					continue
				}
				break
			}
			if i+1 >= len(b) {
				i = len(b)
			}
			l.entropyBytes += int64(i - start)
		}
	}
	return l
}

// checkJPEGCost refuses a JPEG whose scans, coefficient memory or work go
// over the decode-cost bounds for maxPixels (see MaxJPEGScans).
func checkJPEGCost(b []byte, maxPixels int) error {
	if maxPixels <= 0 {
		maxPixels = DefaultMaxPixels
	}
	l := parseJPEGLayout(b)
	if l.scans > MaxJPEGScans {
		return &DecodeCostError{Format: "jpeg", What: "scans", Value: int64(l.scans), Limit: MaxJPEGScans}
	}
	if len(l.comps) == 0 || l.width == 0 || l.height == 0 {
		return nil // no usable frame header: the decoders refuse it
	}
	var coded, allocated int64
	for i := range l.comps {
		c, a := l.blocks(i)
		coded += c
		allocated += a
	}
	if limit := blocksPerEntropyByte*l.entropyBytes + 1; coded > limit {
		return &DecodeCostError{Format: "jpeg", What: "blocks for the coded data", Value: coded, Limit: limit}
	}
	if limit := maxJPEGPasses * coded; l.visits > limit {
		return &DecodeCostError{Format: "jpeg", What: "block visits", Value: l.visits, Limit: limit}
	}
	if l.progressive {
		if need, limit := allocated*64*4, int64(maxCoefBytesPerPixel)*int64(maxPixels); need > limit {
			return &DecodeCostError{Format: "jpeg", What: "coefficient bytes", Value: need, Limit: limit}
		}
	}
	return nil
}
