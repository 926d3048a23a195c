package data_test

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math/rand/v2"
	"slices"

	"github.com/bitrun/bitrun/data"
)

func ExampleDecode() {
	// A 3x2 PNG with a half-transparent pixel, encoded in memory.
	src := image.NewNRGBA(image.Rect(0, 0, 3, 2))
	src.SetNRGBA(0, 0, color.NRGBA{R: 255, A: 128})
	var buf bytes.Buffer
	_ = png.Encode(&buf, src)

	img, err := data.Decode(bytes.NewReader(buf.Bytes()), data.DefaultMaxPixels)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%T %v %v\n", img, img.Bounds(), img.At(0, 0)) // over white

	// The pixel cap is checked before any pixel buffer is allocated.
	_, err = data.Decode(bytes.NewReader(buf.Bytes()), 5)
	fmt.Println(errors.Is(err, data.ErrBadImage), err)
	// Output:
	// *image.RGBA (0,0)-(3,2) {255 127 127 255}
	// true data: bad image: png image is 3x2 = 6 pixels, over the limit of 5
}

func ExampleEvalTensor() {
	// A uniform gray 28x28 image (value 51) to a 3x4x4 BiT input in [-1, 1].
	img := image.NewGray(image.Rect(0, 0, 28, 28))
	for i := range img.Pix {
		img.Pix[i] = 51
	}
	dst := make([]float32, 3*4*4)
	data.EvalTensor(img, 4, 3, data.BiTNorm, dst)
	fmt.Printf("%.2f %.2f\n", dst[0], dst[len(dst)-1])
	// Output: -0.60 -0.60
}

func ExampleTrainTensor() {
	img := image.NewRGBA(image.Rect(0, 0, 40, 30))
	dst := make([]float32, 3*128*128)
	// Resize to 160, random 128 crop, random flip; deterministic for a seed.
	rng := rand.New(rand.NewPCG(1, 2))
	data.TrainTensor(img, data.TrainPreSize(128), 128, 3, data.BiTNorm, rng, dst)
	fmt.Println(data.TrainPreSize(128), len(dst))
	// Output: 160 49152
}

func ExampleShuffled() {
	p := data.Shuffled(10, 42)
	fmt.Println(len(p), slices.Equal(p, data.Shuffled(10, 42)), slices.Max(p))
	// Output: 10 true 9
}
