// Package progjpeg writes hand-made progressive JPEG streams whose decode
// cost is chosen by their shape: the decode bombs of issue 12 and small
// valid seeds. data's bomb tests and fuzz seeds and the serve soak
// (scripts/soak) use it. It is for tests and test tools only.
package progjpeg

import "bytes"

// Stream describes a progressive JPEG: a W×H frame of Comps components
// (sampling 1x1), an optional interleaved DC scan coding every block as
// "no change" (one bit each, a flat grey image), then ACScans first-pass AC
// scans (spectral band ACBand, 1-63 when zero) that skip every block with
// end-of-band runs of 32767 blocks (15 bits each). Such scans cost a
// decoder a walk over every block of the component for ~15 bits per 32767
// blocks.
type Stream struct {
	W, H, Comps int
	DC          bool
	ACScans     int
	ACBand      [2]byte
}

// Encode returns the stream's bytes, SOI to EOI.
func (p Stream) Encode() []byte {
	b := []byte{0xFF, 0xD8}
	dqt := append([]byte{0x00}, bytes.Repeat([]byte{1}, 64)...)
	b = append(b, segment(0xDB, dqt...)...)
	sof := []byte{8, byte(p.H >> 8), byte(p.H), byte(p.W >> 8), byte(p.W), byte(p.Comps)}
	for c := range p.Comps {
		sof = append(sof, byte(c+1), 0x11, 0)
	}
	b = append(b, segment(0xC2, sof...)...)
	// DC table 0: one 1-bit code, category 0. AC table 0: one 1-bit code,
	// symbol 0xE0 (an end-of-band run of 2^14 + 14 more bits).
	counts := make([]byte, 16)
	counts[0] = 1
	b = append(b, segment(0xC4, append(append([]byte{0x00}, counts...), 0x00)...)...)
	b = append(b, segment(0xC4, append(append([]byte{0x10}, counts...), 0xE0)...)...)
	blocks := ((p.W + 7) / 8) * ((p.H + 7) / 8)
	if p.DC {
		sos := []byte{byte(p.Comps)}
		for c := range p.Comps {
			sos = append(sos, byte(c+1), 0x00)
		}
		b = append(b, segment(0xDA, append(sos, 0, 0, 0)...)...)
		var bw bitWriter
		for range blocks * p.Comps {
			bw.bits(0, 1)
		}
		b = append(b, bw.flush()...)
	}
	band := p.ACBand
	if band == [2]byte{} {
		band = [2]byte{1, 63}
	}
	for s := range p.ACScans {
		b = append(b, segment(0xDA, 1, byte(s%p.Comps+1), 0x00, band[0], band[1], 0)...)
		var bw bitWriter
		for left := blocks; left > 0; left -= 32767 {
			bw.bits(0, 1)        // the 0xE0 code
			bw.bits(1<<14-1, 14) // run = 2^14 + (2^14-1) = 32767 blocks
		}
		b = append(b, bw.flush()...)
	}
	return append(b, 0xFF, 0xD9)
}

func segment(marker byte, payload ...byte) []byte {
	n := len(payload) + 2
	return append([]byte{0xFF, marker, byte(n >> 8), byte(n)}, payload...)
}

// bitWriter writes JPEG entropy-coded bits, stuffing a zero after 0xFF.
type bitWriter struct {
	out  []byte
	acc  uint32
	nacc int
}

func (bw *bitWriter) bits(v uint32, n int) {
	for n > 0 {
		n--
		bw.acc = bw.acc<<1 | (v>>n)&1
		bw.nacc++
		if bw.nacc == 8 {
			bw.byte(byte(bw.acc))
			bw.acc, bw.nacc = 0, 0
		}
	}
}

func (bw *bitWriter) byte(b byte) {
	bw.out = append(bw.out, b)
	if b == 0xFF {
		bw.out = append(bw.out, 0)
	}
}

// flush pads the last byte with ones, as encoders do.
func (bw *bitWriter) flush() []byte {
	if bw.nacc > 0 {
		bw.bits(0xFF, 8-bw.nacc)
	}
	return bw.out
}
