package train_test

import (
	"fmt"

	"github.com/bitrun/bitrun/model"
	"github.com/bitrun/bitrun/nn"
	"github.com/bitrun/bitrun/train"
)

// The BiT-HyperRule schedule for a small dataset: warmup over 100 steps,
// ×0.1 at 200, 300 and 400.
func ExampleStepSchedule() {
	lr := train.StepSchedule(0.003, 100, []int{200, 300, 400}, 0.1)
	for _, step := range []int{0, 50, 100, 250, 350, 450} {
		fmt.Printf("step %d: %.3g\n", step, lr(step))
	}
	// Output:
	// step 0: 0
	// step 50: 0.0015
	// step 100: 0.003
	// step 250: 0.0003
	// step 350: 3e-05
	// step 450: 3e-06
}

func ExamplePreset() {
	trainable, _ := train.Preset(train.PresetHeadGN)
	for _, name := range []string{model.RootKernel, model.HeadGamma, model.HeadKernel} {
		fmt.Println(name, trainable(name))
	}
	// Output:
	// resnet/root_block/standardized_conv2d/kernel false
	// resnet/group_norm/gamma true
	// resnet/head/conv2d/kernel true
}

// Fine-tune only the head of a network: one step of SGD on a batch of two
// images, with gradients keyed by the official checkpoint names.
func ExampleNet() {
	cfg, _ := model.Arch("tiny", 3)
	params := model.Init(cfg, 1)
	head, _ := train.Preset(train.PresetHead)
	net, _ := train.NewNet(cfg, params, head)

	x := nn.New(2, 3, 32, 32) // pixels in [-1, 1]
	targets := make([]float32, 2*3)
	_ = train.OneHot([]int{0, 2}, 3, targets)
	loss, _, _ := net.ForwardBackward(x, targets, 0.5) // mean over the batch
	grads := net.Grads()
	opt := train.DefaultSGD()
	_ = opt.Step(params, grads, 0.003)

	fmt.Printf("loss %.4f (ln 3 = 1.0986 with a zero head)\n", loss*0.5)
	fmt.Println(grads.Names())
	// Output:
	// loss 1.0986 (ln 3 = 1.0986 with a zero head)
	// [resnet/head/conv2d/bias resnet/head/conv2d/kernel]
}
