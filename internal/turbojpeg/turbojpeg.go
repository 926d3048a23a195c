package turbojpeg

import (
	"errors"
	"fmt"

	"github.com/bitrun/bitrun/internal/dynlib"
)

// ErrUnavailable is wrapped by every error saying the library could not be
// used: built without cgo, library not found, or a required symbol missing.
var ErrUnavailable = errors.New("turbojpeg: unavailable")

// EnvLib names the environment variable holding an explicit library path.
const EnvLib = "BITRUN_TURBOJPEG_LIB"

// Colorspace is the colour space of a JPEG stream (TurboJPEG's TJCS values).
type Colorspace int

// JPEG colour spaces.
const (
	RGB Colorspace = iota
	YCbCr
	Gray
	CMYK
	YCCK
)

func (c Colorspace) String() string {
	switch c {
	case RGB:
		return "RGB"
	case YCbCr:
		return "YCbCr"
	case Gray:
		return "gray"
	case CMYK:
		return "CMYK"
	case YCCK:
		return "YCCK"
	}
	return fmt.Sprintf("colorspace(%d)", int(c))
}

// Format is the pixel layout Decode writes.
type Format int

// Pixel layouts (TurboJPEG's TJPF values).
const (
	FormatRGBA Format = 7 // 4 bytes per pixel, alpha 0xFF
	FormatGray Format = 6 // 1 byte per pixel
)

// BytesPerPixel is the size of one pixel of f.
func (f Format) BytesPerPixel() int {
	if f == FormatGray {
		return 1
	}
	return 4
}

// Header is what a JPEG stream's header says about the image.
type Header struct {
	Width, Height int
	Colorspace    Colorspace
}

// DecodeError is a failure reported by the library for one stream (corrupt
// or truncated data, an unsupported feature). Warning is set when the
// library itself only warned (bitrun stops on warnings: the image would be
// partly grey).
type DecodeError struct {
	Msg     string
	Warning bool
}

func (e *DecodeError) Error() string { return "turbojpeg: " + e.Msg }

// idleHandles bounds the decompressor handles kept between calls; more are
// created (and destroyed after use) under heavier concurrency.
const idleHandles = 32

// candidates lists the library names and paths Open tries.
func candidates() []string {
	return dynlib.Candidates(EnvLib,
		"libturbojpeg.so.0",
		"libturbojpeg.so",
		"/usr/lib/x86_64-linux-gnu/libturbojpeg.so.0",
		"/usr/lib/aarch64-linux-gnu/libturbojpeg.so.0",
		"/usr/lib64/libturbojpeg.so.0",
		"/usr/local/lib/libturbojpeg.so.0",
		"/opt/libjpeg-turbo/lib64/libturbojpeg.so.0",
		"/opt/homebrew/opt/jpeg-turbo/lib/libturbojpeg.dylib",
		"/usr/local/opt/jpeg-turbo/lib/libturbojpeg.dylib",
	)
}

// Candidates returns the paths Open tries, in order. When
// $BITRUN_TURBOJPEG_LIB is set it is the only candidate, so a wrong explicit
// path is an error rather than a silent fallback.
func Candidates() []string { return candidates() }

// Lib is a loaded libturbojpeg. Its methods are safe for concurrent use
// (each call borrows its own decompressor handle); Close waits for running
// decodes and is idempotent.
type Lib struct {
	impl
}

// Open loads libturbojpeg from the first candidate that works (see
// Candidates). The error wraps ErrUnavailable and lists what was tried.
func Open() (*Lib, error) {
	if !cgoEnabled {
		return OpenPath(candidates()[0])
	}
	return dynlib.First(candidates(), ErrUnavailable,
		"install libjpeg-turbo's TurboJPEG library, e.g. Debian's libturbojpeg0, or set "+EnvLib+" to its path", OpenPath)
}

// OpenPath loads libturbojpeg from path (a file path or a name for the
// dynamic linker's search path).
func OpenPath(path string) (*Lib, error) {
	if path == "" {
		return nil, fmt.Errorf("%w: empty library path", ErrUnavailable)
	}
	l := &Lib{}
	if err := l.open(path); err != nil {
		return nil, err
	}
	return l, nil
}

// Path is the file the library was loaded from (as the dynamic linker
// reports it), or the name that was asked for when that is unknown.
func (l *Lib) Path() string { return l.path }

// Close unloads the library. It is safe to call more than once; decoding
// after Close returns an error.
func (l *Lib) Close() error { return l.close() }

// Header reads the size and colour space of the JPEG stream b without
// decoding it.
func (l *Lib) Header(b []byte) (Header, error) {
	if len(b) == 0 {
		return Header{}, &DecodeError{Msg: "empty JPEG stream"}
	}
	return l.header(b)
}

// Decode decompresses the JPEG stream b into dst as a w×h image in format f,
// rows packed (stride w*f.BytesPerPixel()). w and h must be the stream's
// size from Header; dst must hold w*h*f.BytesPerPixel() bytes. Corrupt or
// truncated data, warnings included, returns a *DecodeError. Progressive
// streams with an abusive number of scans are refused.
func (l *Lib) Decode(b []byte, f Format, dst []byte, w, h int) error {
	if f != FormatRGBA && f != FormatGray {
		return fmt.Errorf("turbojpeg: unsupported pixel format %d", int(f))
	}
	if len(b) == 0 {
		return &DecodeError{Msg: "empty JPEG stream"}
	}
	const maxInt32 = 1<<31 - 1
	if w <= 0 || h <= 0 || int64(w)*int64(f.BytesPerPixel()) > maxInt32 || h > maxInt32 {
		return fmt.Errorf("turbojpeg: image size %dx%d out of range", w, h)
	}
	if need := int64(w) * int64(h) * int64(f.BytesPerPixel()); int64(len(dst)) < need {
		return fmt.Errorf("turbojpeg: destination holds %d bytes, a %dx%d image needs %d", len(dst), w, h, need)
	}
	return l.decode(b, f, dst, w, h)
}
