package model_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"

	"github.com/bitrun/bitrun/model"
	"github.com/bitrun/bitrun/nn"
)

// Fresh weights for a small network, saved and loaded back: Load infers the
// architecture from the checkpoint's keys and shapes.
func ExampleLoad() {
	cfg, err := model.Arch("tiny", 10)
	if err != nil {
		panic(err)
	}
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "tiny.npz")
	if err := model.SaveNPZ(path, model.Init(cfg, 1)); err != nil {
		panic(err)
	}
	m, err := model.Load(path)
	if err != nil {
		panic(err)
	}
	logits, features := m.Forward(nn.New(2, 3, 32, 32))
	fmt.Println(m.Config.Name, m.Config.Units, m.Config.Classes)
	fmt.Println(logits.Shape, features.Shape)
	// Output:
	// tiny [1 1 1 1] 10
	// [2 10] [2 256]
}

// The parameter count and feature map sizes of a released architecture.
func ExampleConfig_Stages() {
	cfg, _ := model.Arch("R50x1", 1000)
	stages, _ := cfg.Stages(224)
	fmt.Println(cfg.ParamCount())
	for _, s := range stages {
		fmt.Printf("%s %d->%d %dx%d\n", s.Name, s.In, s.Out, s.Size, s.Size)
	}
	// Output:
	// 25549352
	// root 3->64 112x112
	// pool 64->64 56x56
	// block1 64->256 56x56
	// block2 256->512 28x28
	// block3 512->1024 14x14
	// block4 1024->2048 7x7
	// head 2048->1000 1x1
}

// A new zero head for transfer to a 5-class task; the trunk is shared.
func ExampleReplaceHead() {
	cfg, _ := model.Arch("tiny", 1000)
	params := model.ReplaceHead(model.Init(cfg, 1), 5)
	got, _ := model.Infer(params)
	fmt.Println(got.Name, got.Classes, params[model.HeadKernel].Shape)
	// Output: tiny 5 [1 1 256 5]
}

// Arrays in NumPy's .npy format.
func ExampleWriteNPY() {
	var buf bytes.Buffer
	_ = model.WriteNPY(&buf, nn.FromData([]float32{1, 2, 3, 4, 5, 6}, 2, 3))
	x, _ := model.ReadNPY(&buf)
	fmt.Println(x.Shape, x.Data)
	// Output: [2 3] [1 2 3 4 5 6]
}
