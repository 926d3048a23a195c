package nn_test

import (
	"fmt"
	"strings"

	"github.com/bitrun/bitrun/nn"
)

// A 3x3 kernel of ones over a 3x3 image of ones with padding 1 counts, for
// each output pixel, how many taps fall inside the image.
func ExampleConv2D() {
	x := nn.New(1, 1, 3, 3)
	w := nn.New(1, 1, 3, 3)
	for i := range x.Data {
		x.Data[i], w.Data[i] = 1, 1
	}
	y := nn.Conv2D(x, w, 1, 1)
	for r := 0; r < 3; r++ {
		fmt.Println(y.Data[r*3 : r*3+3])
	}
	// Output:
	// [4 6 4]
	// [6 9 6]
	// [4 6 4]
}

// BackendNamed picks a GEMM by the keys $BITRUN_GEMM accepts; Backends lists
// what this process can use (tests and benchmarks run against each).
func ExampleBackendNamed() {
	g, err := nn.BackendNamed("go")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(strings.Fields(g.Name())[0])
	_, err = nn.BackendNamed("tpu")
	fmt.Println(err)
	// Output:
	// go
	// nn: gemm backend unavailable: unknown gemm backend "tpu" (want auto, go, openblas or gonum)
}

// GroupNormReLU is the pre-activation of every BiT unit: normalise each
// group of channels to zero mean and unit variance, scale and shift per
// channel, then clamp at zero.
func ExampleGroupNormReLU() {
	x := nn.FromData([]float32{1, 2, 3, 4, 10, 10, 10, 10}, 1, 2, 2, 2)
	y := nn.GroupNormReLU(x, 2, []float32{1, 1}, []float32{0, 0.5})
	for i, v := range y.Data {
		y.Data[i] = float32(int(v*100+0.5)) / 100 // two decimals
	}
	fmt.Println(y.Data)
	// Output:
	// [0 0 0.45 1.34 0.5 0.5 0.5 0.5]
}
