package data

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	"os"
	"strings"
	"sync"

	"github.com/bitrun/bitrun/internal/turbojpeg"
)

// EnvJPEG names the environment variable that picks the JPEG decoder: auto
// (default: libjpeg-turbo when it loads, else image/jpeg), turbo (libjpeg-turbo
// or fail) or go (image/jpeg).
const EnvJPEG = "BITRUN_JPEG"

// JPEG decoder names accepted by SelectJPEG and $BITRUN_JPEG.
const (
	JPEGAuto  = "auto"
	JPEGTurbo = "turbo"
	JPEGGo    = "go"
)

// jpegDec is the process-wide JPEG decoder choice.
var jpegDec struct {
	mu     sync.RWMutex
	inited bool
	lib    *turbojpeg.Lib // nil: image/jpeg
	err    error          // set when a forced decoder is unavailable
	why    string         // why auto chose image/jpeg
}

// loadTurbo is shared by every selection so the library is loaded once.
var loadTurbo = sync.OnceValues(turbojpeg.Open)

// SelectJPEG picks the JPEG decoder for the whole process: "auto", "turbo"
// or "go" (see EnvJPEG). "turbo" fails when libjpeg-turbo cannot be loaded;
// until another selection, decoding a JPEG then fails with that error too.
func SelectJPEG(name string) error {
	jpegDec.mu.Lock()
	defer jpegDec.mu.Unlock()
	jpegDec.inited = true
	jpegDec.lib, jpegDec.err, jpegDec.why = nil, nil, ""
	switch strings.ToLower(strings.TrimSpace(name)) {
	case "", JPEGAuto:
		lib, err := loadTurbo()
		if err != nil {
			jpegDec.why = err.Error()
			return nil
		}
		jpegDec.lib = lib
	case JPEGTurbo:
		lib, err := loadTurbo()
		if err != nil {
			jpegDec.err = fmt.Errorf("data: JPEG decoder %q (from %s or SelectJPEG) is unavailable: %w", JPEGTurbo, EnvJPEG, err)
			return jpegDec.err
		}
		jpegDec.lib = lib
	case JPEGGo:
	default:
		jpegDec.err = fmt.Errorf("data: unknown JPEG decoder %q (want %s, %s or %s)", name, JPEGAuto, JPEGTurbo, JPEGGo)
		return jpegDec.err
	}
	return nil
}

// jpegDecoder returns the selected decoder (nil lib: image/jpeg), applying
// $BITRUN_JPEG on first use.
func jpegDecoder() (*turbojpeg.Lib, error) {
	jpegDec.mu.RLock()
	if jpegDec.inited {
		defer jpegDec.mu.RUnlock()
		return jpegDec.lib, jpegDec.err
	}
	jpegDec.mu.RUnlock()
	_ = SelectJPEG(os.Getenv(EnvJPEG))
	return jpegDecoder()
}

// JPEGDecoder describes the JPEG decoder in use, e.g. "libjpeg-turbo
// (/usr/lib/x86_64-linux-gnu/libturbojpeg.so.0)" or "image/jpeg (...why)",
// and returns the error of a forced decoder that is unavailable.
func JPEGDecoder() (string, error) {
	lib, err := jpegDecoder()
	if err != nil {
		return "unavailable", err
	}
	if lib != nil {
		return "libjpeg-turbo (" + lib.Path() + ")", nil
	}
	jpegDec.mu.RLock()
	defer jpegDec.mu.RUnlock()
	if jpegDec.why != "" {
		return "image/jpeg (libjpeg-turbo not loaded: " + jpegDec.why + ")", nil
	}
	return "image/jpeg", nil
}

// errTurboDeclined means libjpeg-turbo did not decode the stream; image/jpeg
// gets it next (and its error is the one reported if it fails too).
var errTurboDeclined = errors.New("data: libjpeg-turbo declined the stream")

// decodeTurbo decodes a JPEG whose header image/jpeg already checked against
// the pixel cap (cfg) with libjpeg-turbo: gray streams to *image.Gray,
// YCbCr ones to an opaque *image.RGBA. RGB, CMYK and YCCK streams and a
// header that libjpeg-turbo cannot read or that disagrees with cfg return
// errTurboDeclined; an error while decoding (corrupt or truncated data,
// warnings, the scan limit) is returned as it is and is final.
//
// alloc, when not nil, provides the pixel buffer (else it is allocated).
func decodeTurbo(lib *turbojpeg.Lib, b []byte, cfg image.Config, alloc func(int) []byte) (image.Image, error) {
	h, err := lib.Header(b)
	if err != nil || h.Width != cfg.Width || h.Height != cfg.Height {
		return nil, errTurboDeclined
	}
	if alloc == nil {
		alloc = func(n int) []byte { return make([]byte, n) }
	}
	r := image.Rect(0, 0, h.Width, h.Height)
	switch {
	case h.Colorspace == turbojpeg.Gray && cfg.ColorModel == color.GrayModel:
		m := &image.Gray{Pix: alloc(h.Width * h.Height), Stride: h.Width, Rect: r}
		if err := lib.Decode(b, turbojpeg.FormatGray, m.Pix, h.Width, h.Height); err != nil {
			return nil, err
		}
		return m, nil
	case h.Colorspace == turbojpeg.YCbCr && cfg.ColorModel == color.YCbCrModel:
		// Only when image/jpeg agrees the stream is YCbCr: libjpeg-turbo
		// 2.1 takes some RGB streams (Go's testdata/video-001.rgb.jpeg) for
		// YCbCr and would convert them wrongly.
		m := &image.RGBA{Pix: alloc(4 * h.Width * h.Height), Stride: 4 * h.Width, Rect: r}
		if err := lib.Decode(b, turbojpeg.FormatRGBA, m.Pix, h.Width, h.Height); err != nil {
			return nil, err
		}
		return m, nil
	}
	return nil, errTurboDeclined
}
