package runtime_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/bitrun/bitrun/runtime"
)

// Open a model with CUDA when it works (falling back to CPU, logged), and
// classify one 128×128 image already preprocessed to [-1, 1].
func Example() {
	p, err := runtime.Open("r50x1.onnx", runtime.Options{
		Provider: runtime.ProviderAuto,
		Logger:   slog.New(slog.NewTextHandler(os.Stderr, nil)),
	})
	if errors.Is(err, runtime.ErrUnavailable) {
		fmt.Println("install ONNX Runtime: make setup")
		return
	}
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Close()
	info := p.Info()
	fmt.Println(info.Input, info.Shape, info.Outputs, info.Metadata["bitrun.labels"])

	pixels := make([]float32, 1*3*128*128)
	out, err := p.Run(context.Background(), pixels, []int64{1, 3, 128, 128})
	if errors.Is(err, runtime.ErrBadInput) {
		fmt.Println("the model wants another shape:", err)
		return
	}
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(out["logits"].Shape)
}
