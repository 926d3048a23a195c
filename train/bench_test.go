package train

import (
	"fmt"
	"strings"
	"testing"

	"github.com/bitrun/bitrun/internal/cputime"
	"github.com/bitrun/bitrun/model"
	"github.com/bitrun/bitrun/nn"
)

// benchTrainStep times one logical step (forward, backward, SGD update) for
// an architecture, resolution and batch, on every GEMM backend.
func benchTrainStep(b *testing.B, arch string, res, batch int) {
	cfg, err := model.Arch(arch, 10)
	if err != nil {
		b.Fatal(err)
	}
	params := randomParams(cfg, 1)
	x := randomInput(2, batch, 3, res, res)
	targets := make([]float32, batch*10)
	labels := make([]int, batch)
	for i := range labels {
		labels[i] = i % 10
	}
	_ = OneHot(labels, 10, targets)
	flops := StepFlops(cfg, res) * float64(batch)
	old := nn.Backend()
	defer nn.SetBackend(old)
	for _, g := range nn.Backends() {
		name := strings.Fields(g.Name())[0]
		b.Run(fmt.Sprintf("%s/%dpx/b%d/%s", arch, res, batch, name), func(b *testing.B) {
			nn.SetBackend(g)
			net, err := NewNet(cfg, params, nil)
			if err != nil {
				b.Fatal(err)
			}
			opt := &SGD{Momentum: 0.9, WeightDecay: 1e-4}
			step := func() {
				if _, _, err := net.ForwardBackward(x, targets, 1/float32(batch)); err != nil {
					b.Fatal(err)
				}
				if err := opt.Step(params, net.Grads(), 1e-3); err != nil {
					b.Fatal(err)
				}
				net.ZeroGrad()
			}
			step() // warm the arena
			b.ReportAllocs()
			cpu0, _ := cputime.Process()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				step()
			}
			sec := b.Elapsed().Seconds() / float64(b.N)
			b.ReportMetric(float64(batch)/sec, "images/s")
			b.ReportMetric(flops/sec/1e9, "GFLOP/s")
			if cpu1, ok := cputime.Process(); ok && cpu1 > cpu0 {
				cpu := cpu1 - cpu0
				// Work per CPU-second: steadier than the wall clock when other
				// processes share the cores (GOMAXPROCS cores busy = GOMAXPROCS× the wall rate).
				b.ReportMetric(flops*float64(b.N)/cpu.Seconds()/1e9, "GFLOP/cpu-s")
			}
		})
	}
}

func BenchmarkTrainStepSmall(b *testing.B) { benchTrainStep(b, "small", 32, 128) }
func BenchmarkTrainStepTiny(b *testing.B)  { benchTrainStep(b, "tiny", 32, 128) }
func BenchmarkTrainStepR50(b *testing.B) {
	if testing.Short() {
		b.Skip("R50x1 at 128px takes seconds per step")
	}
	benchTrainStep(b, "R50x1", 128, 8)
}
