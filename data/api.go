package data

// Core types of the package. Decoding is in decode.go, preprocessing in
// preprocess.go, datasets in dataset.go, idx.go and folder.go.

import (
	"errors"
	"fmt"
	"image"
)

// ErrBadImage is wrapped by every error about undecodable or oversized images.
var ErrBadImage = errors.New("data: bad image")

// TooManyPixelsError is the error of an image whose header claims more
// pixels than the cap; it is found before any pixel buffer is allocated and
// wraps ErrBadImage.
type TooManyPixelsError struct {
	Format        string // "jpeg", "png", ...
	Width, Height int
	Limit         int // the pixel cap
}

func (e *TooManyPixelsError) Error() string {
	return fmt.Sprintf("%v: %s image is %dx%d = %d pixels, over the limit of %d",
		ErrBadImage, e.Format, e.Width, e.Height, e.Pixels(), e.Limit)
}

func (e *TooManyPixelsError) Unwrap() error { return ErrBadImage }

// Pixels is Width*Height.
func (e *TooManyPixelsError) Pixels() int64 { return int64(e.Width) * int64(e.Height) }

// DefaultMaxPixels is the default cap on width*height checked before decoding.
const DefaultMaxPixels = 40_000_000

// Norm maps a pixel value p in [0,255] to (p/255 - Mean[c]) / Std[c].
// BiT's is Mean 0.5, Std 0.5 on every channel, i.e. p/127.5 - 1.
type Norm struct {
	Mean [3]float32
	Std  [3]float32
}

// BiTNorm is the BiT preprocessing: [-1, 1].
var BiTNorm = Norm{Mean: [3]float32{0.5, 0.5, 0.5}, Std: [3]float32{0.5, 0.5, 0.5}}

// Dataset is an indexed labelled image collection.
type Dataset interface {
	Len() int
	Classes() []string
	// Label returns the class index of example i without decoding it.
	Label(i int) int
	// Image decodes example i.
	Image(i int) (image.Image, error)
}
