package data

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
	"sync"

	"golang.org/x/image/bmp"
	"golang.org/x/image/webp"
)

// ErrUnknownFormat is returned when the bytes are not one of the supported
// formats; errors.Is(ErrUnknownFormat, ErrBadImage) holds too.
var ErrUnknownFormat error = unknownFormat{}

type unknownFormat struct{}

func (unknownFormat) Error() string {
	return "data: bad image: unknown format (supported: jpeg, png, gif, bmp, webp)"
}

func (unknownFormat) Is(target error) bool { return target == ErrBadImage }

// SupportedFormats lists the formats Decode accepts.
var SupportedFormats = []string{"jpeg", "png", "gif", "bmp", "webp"}

// MaxEncodedBytes is the cap on the encoded size that Decode reads for a given
// pixel cap: 8 bytes per allowed pixel (more than any supported format needs
// for a legitimate image, uncompressed BMP included) plus 1 MiB for headers
// and metadata.
func MaxEncodedBytes(maxPixels int) int64 {
	if maxPixels <= 0 {
		maxPixels = DefaultMaxPixels
	}
	return 8*int64(maxPixels) + 1<<20
}

type format struct {
	name   string
	config func(io.Reader) (image.Config, error)
	decode func(io.Reader) (image.Image, error)
}

var (
	fmtJPEG = format{"jpeg", jpeg.DecodeConfig, jpeg.Decode}
	fmtPNG  = format{"png", png.DecodeConfig, png.Decode}
	fmtGIF  = format{"gif", gif.DecodeConfig, gif.Decode}
	fmtBMP  = format{"bmp", bmp.DecodeConfig, bmp.Decode}
	fmtWebP = format{"webp", webp.DecodeConfig, webp.Decode}
)

// sniff picks the format from the leading magic bytes.
func sniff(b []byte) (format, bool) {
	switch {
	case len(b) >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF:
		return fmtJPEG, true
	case bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")):
		return fmtPNG, true
	case bytes.HasPrefix(b, []byte("GIF87a")), bytes.HasPrefix(b, []byte("GIF89a")):
		return fmtGIF, true
	case bytes.HasPrefix(b, []byte("BM")):
		return fmtBMP, true
	case len(b) >= 12 && string(b[0:4]) == "RIFF" && string(b[8:12]) == "WEBP":
		return fmtWebP, true
	}
	return format{}, false
}

// Decode reads a JPEG, PNG, GIF, BMP or WebP image, checking its pixel count
// with DecodeConfig first (errors wrap ErrBadImage), and applies the EXIF
// orientation of JPEGs.
//
// maxPixels <= 0 means DefaultMaxPixels. At most MaxEncodedBytes(maxPixels)
// bytes are read from r; longer input is rejected. Worst-case memory is the
// encoded bytes plus about 4 bytes per pixel (8 while converting an unusual
// colour model), plus for progressive JPEGs a coefficient buffer of at most
// 8 bytes per allowed pixel; JPEG scans and work are bounded too (see
// DecodeCostError and the package documentation). The result is *image.Gray, *image.YCbCr or an opaque
// *image.RGBA (alpha composited over white); see the package documentation.
func Decode(r io.Reader, maxPixels int) (image.Image, error) {
	if maxPixels <= 0 {
		maxPixels = DefaultMaxPixels
	}
	limit := MaxEncodedBytes(maxPixels)
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%w: reading: %w", ErrBadImage, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%w: encoded image larger than %d bytes (limit for %d pixels)", ErrBadImage, limit, maxPixels)
	}
	return DecodeBytes(b, maxPixels)
}

// DecodeBytes is Decode for an in-memory encoded image (no byte cap beyond
// len(b) itself).
func DecodeBytes(b []byte, maxPixels int) (image.Image, error) {
	return decodeBytes(b, maxPixels, nil)
}

// DecodeEvalTensor decodes b like DecodeBytes and writes its evaluation
// tensor (EvalTensor with size, channels and norm) into dst. The result is
// exactly that of DecodeBytes followed by EvalTensor, but the decoded pixels
// live in a reused buffer (libjpeg-turbo decodes into it) and never escape,
// which saves a server the allocation, zeroing and garbage collection of
// every upload's pixels.
func DecodeEvalTensor(b []byte, maxPixels, size, channels int, norm Norm, dst []float32) error {
	checkArgs(size, size, channels, dst)
	var held *[]byte // decodeBytes allocates at most one pixel buffer
	defer func() {
		if held != nil {
			putPix(held)
		}
	}()
	m, err := decodeBytes(b, maxPixels, func(n int) []byte {
		held = getPix(n)
		return *held
	})
	if err != nil {
		return err
	}
	EvalTensor(m, size, channels, norm, dst)
	return nil
}

// pixPool holds pixel buffers of DecodeEvalTensor up to maxPooledPix bytes;
// larger images get a buffer of their own.
var pixPool sync.Pool

const maxPooledPix = 16 << 20

func getPix(n int) *[]byte {
	if n <= maxPooledPix {
		if p, _ := pixPool.Get().(*[]byte); p != nil && cap(*p) >= n {
			*p = (*p)[:n]
			return p
		}
	}
	b := make([]byte, n)
	return &b
}

func putPix(p *[]byte) {
	if cap(*p) <= maxPooledPix {
		pixPool.Put(p)
	}
}

// decodeBytes is DecodeBytes; alloc, when not nil, provides the pixel
// buffer of a libjpeg-turbo decode (called at most once; the contents need
// not be zero).
// DecodeBytesPerPixel bounds what decoding one pixel of an accepted image
// costs in memory: progressive JPEG coefficients (8 bytes, checked by the
// cost bound before decoding) plus the decoded pixels (4).
const DecodeBytesPerPixel = 12

// Pixels returns the pixel count an encoded image's header declares (no
// pixel is decoded), or 0 when the format or header is not readable (the
// decode then fails before allocating).
func Pixels(b []byte) (n int64) {
	f, ok := sniff(b)
	if !ok {
		return 0
	}
	defer func() {
		if recover() != nil {
			n = 0
		}
	}()
	cfg, err := f.config(bytes.NewReader(b))
	if err != nil || cfg.Width <= 0 || cfg.Height <= 0 {
		return 0
	}
	return int64(cfg.Width) * int64(cfg.Height)
}

func decodeBytes(b []byte, maxPixels int, alloc func(n int) []byte) (img image.Image, err error) {
	if maxPixels <= 0 {
		maxPixels = DefaultMaxPixels
	}
	f, ok := sniff(b)
	if !ok {
		return nil, ErrUnknownFormat
	}
	// Third-party decoders should not panic, but the input is untrusted.
	defer func() {
		if p := recover(); p != nil {
			img, err = nil, fmt.Errorf("%w: %s decoder failed: %v", ErrBadImage, f.name, p)
		}
	}()
	cfg, err := f.config(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("%w: %s header: %w", ErrBadImage, f.name, err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return nil, fmt.Errorf("%w: %s image has empty size %dx%d", ErrBadImage, f.name, cfg.Width, cfg.Height)
	}
	if int64(cfg.Width)*int64(cfg.Height) > int64(maxPixels) {
		return nil, &TooManyPixelsError{Format: f.name, Width: cfg.Width, Height: cfg.Height, Limit: maxPixels}
	}
	var m image.Image
	normalized := false
	if f.name == "jpeg" {
		// Scans, coefficient memory and work are bounded for both decoders
		// before either allocates.
		if err := checkJPEGCost(b, maxPixels); err != nil {
			return nil, err
		}
		lib, err := jpegDecoder()
		if err != nil {
			return nil, err
		}
		if lib != nil {
			// Declined streams (colour spaces libjpeg-turbo does not convert
			// the way image/jpeg does) go to image/jpeg, which decodes them
			// or says why they are bad. A stream libjpeg-turbo failed on
			// (corrupt or truncated data, its scan limit) is bad: image/jpeg
			// does not get a second try. Accepted ones are already normalised.
			m, err = decodeTurbo(lib, b, cfg, alloc)
			if err != nil && !errors.Is(err, errTurboDeclined) {
				return nil, fmt.Errorf("%w: jpeg: %w", ErrBadImage, err)
			}
			normalized = m != nil
		}
	}
	if m == nil {
		m, err = f.decode(bytes.NewReader(b))
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrBadImage, f.name, err)
	}
	if bd := m.Bounds(); int64(bd.Dx())*int64(bd.Dy()) > int64(maxPixels) || bd.Empty() {
		return nil, fmt.Errorf("%w: %s decoded to %dx%d, inconsistent with its header", ErrBadImage, f.name, bd.Dx(), bd.Dy())
	}
	if !normalized {
		m = normalize(m)
	}
	if f.name == "jpeg" {
		if o := jpegOrientation(b); o > 1 {
			m = orient(m, o)
		}
	}
	return m, nil
}

// normalize converts m to *image.Gray, *image.YCbCr (4:4:4, 4:2:2, 4:2:0 or
// 4:4:0 as produced by image/jpeg) or an opaque *image.RGBA with bounds at the
// origin.
func normalize(m image.Image) image.Image {
	switch v := m.(type) {
	case *image.Gray:
		if v.Rect.Min == (image.Point{}) {
			return v
		}
	case *image.YCbCr:
		if v.Rect.Min == (image.Point{}) {
			return v
		}
	case *image.RGBA:
		if v.Rect.Min == (image.Point{}) && opaqueRGBA(v) {
			return v
		}
	}
	b := m.Bounds()
	w, h := b.Dx(), b.Dy()
	switch v := m.(type) {
	case *image.Gray, *image.Gray16:
		g := image.NewGray(image.Rect(0, 0, w, h))
		for y := 0; y < h; y++ {
			row := g.Pix[y*g.Stride : y*g.Stride+w]
			for x := range row {
				c := color.GrayModel.Convert(v.At(b.Min.X+x, b.Min.Y+y)).(color.Gray)
				row[x] = c.Y
			}
		}
		return g
	case *image.Paletted:
		// Pre-composite the palette once.
		pal := make([][3]uint8, len(v.Palette))
		for i, c := range v.Palette {
			pal[i] = overWhite(c)
		}
		out := image.NewRGBA(image.Rect(0, 0, w, h))
		for y := 0; y < h; y++ {
			src := v.Pix[(y)*v.Stride : y*v.Stride+w]
			dst := out.Pix[y*out.Stride : y*out.Stride+4*w]
			for x, ci := range src {
				var p [3]uint8
				if int(ci) < len(pal) {
					p = pal[ci]
				} // else: index outside the palette reads as black
				dst[4*x], dst[4*x+1], dst[4*x+2], dst[4*x+3] = p[0], p[1], p[2], 255
			}
		}
		return out
	case *image.NRGBA:
		out := image.NewRGBA(image.Rect(0, 0, w, h))
		for y := 0; y < h; y++ {
			src := v.Pix[(y+b.Min.Y-v.Rect.Min.Y)*v.Stride+(b.Min.X-v.Rect.Min.X)*4:]
			dst := out.Pix[y*out.Stride : y*out.Stride+4*w]
			for x := 0; x < w; x++ {
				a := uint32(src[4*x+3])
				for c := 0; c < 3; c++ {
					// straight alpha over white: c*a + 255*(1-a)
					dst[4*x+c] = uint8((uint32(src[4*x+c])*a + 255*(255-a) + 127) / 255)
				}
				dst[4*x+3] = 255
			}
		}
		return out
	}
	out := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		dst := out.Pix[y*out.Stride : y*out.Stride+4*w]
		for x := 0; x < w; x++ {
			p := overWhite(m.At(b.Min.X+x, b.Min.Y+y))
			dst[4*x], dst[4*x+1], dst[4*x+2], dst[4*x+3] = p[0], p[1], p[2], 255
		}
	}
	return out
}

func opaqueRGBA(m *image.RGBA) bool {
	w := m.Rect.Dx()
	for y := 0; y < m.Rect.Dy(); y++ {
		row := m.Pix[y*m.Stride : y*m.Stride+4*w]
		for i := 3; i < len(row); i += 4 {
			if row[i] != 255 {
				return false
			}
		}
	}
	return true
}

// overWhite composites c over opaque white and returns 8-bit RGB.
func overWhite(c color.Color) [3]uint8 {
	r, g, b, a := c.RGBA() // premultiplied, 16-bit
	bg := 0xffff - a
	return [3]uint8{uint8((r + bg) >> 8), uint8((g + bg) >> 8), uint8((b + bg) >> 8)}
}
