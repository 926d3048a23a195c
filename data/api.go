package data

// API contract for image decoding, preprocessing and datasets (filled in by the
// data work; bodies may move to other files of this package).

import (
	"errors"
	"image"
	"io"
	"math/rand/v2"
)

// ErrBadImage is wrapped by every error about undecodable or oversized images.
var ErrBadImage = errors.New("data: bad image")

// DefaultMaxPixels is the default cap on width*height checked before decoding.
const DefaultMaxPixels = 40_000_000

// Decode reads a JPEG, PNG, GIF, BMP or WebP image, checking its pixel count
// with DecodeConfig first (errors wrap ErrBadImage), and applies the EXIF
// orientation of JPEGs.
func Decode(r io.Reader, maxPixels int) (image.Image, error) { panic("TODO") }

// Norm maps a pixel value p in [0,255] to (p/255 - Mean[c]) / Std[c].
// BiT's is Mean 0.5, Std 0.5 on every channel, i.e. p/127.5 - 1.
type Norm struct {
	Mean [3]float32
	Std  [3]float32
}

// BiTNorm is the BiT preprocessing: [-1, 1].
var BiTNorm = Norm{Mean: [3]float32{0.5, 0.5, 0.5}, Std: [3]float32{0.5, 0.5, 0.5}}

// EvalTensor resizes img (square, bilinear, aspect not kept) to size×size and
// writes it as CHW float32 with the given channel count (1 or 3; gray images
// are replicated to 3 channels, colour converted to luma for 1) into dst,
// which must hold channels*size*size values.
func EvalTensor(img image.Image, size, channels int, norm Norm, dst []float32) { panic("TODO") }

// TrainTensor is the BiT train-time preprocessing: resize to preSize×preSize,
// random crop to crop×crop, random horizontal flip, then as EvalTensor.
func TrainTensor(img image.Image, preSize, crop, channels int, norm Norm, rng *rand.Rand, dst []float32) {
	panic("TODO")
}

// Dataset is an indexed labelled image collection.
type Dataset interface {
	Len() int
	Classes() []string
	// Label returns the class index of example i without decoding it.
	Label(i int) int
	// Image decodes example i.
	Image(i int) (image.Image, error)
}

// Open opens a dataset split ("train" or "test"): a folder of IDX files
// (MNIST/Fashion-MNIST layout, gzipped or not) or an image folder with one
// sub-folder per class (PATH/SPLIT/CLASS/*.png, or PATH/CLASS/* when there
// are no split folders: then "train"/"test" is a deterministic 80/20 split).
func Open(path, split string) (Dataset, error) { panic("TODO") }

// Subset returns the examples at the given indices.
func Subset(d Dataset, idx []int) Dataset { panic("TODO") }

// Shuffled returns a deterministic permutation of [0, n) for the seed.
func Shuffled(n int, seed uint64) []int { panic("TODO") }
