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
				if err := net.Step(opt, 1e-3); err != nil {
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

// BenchmarkParamPasses times the passes of a training step over
// parameter-sized arrays (R50x1's conv kernels: about 23.5M values), which
// are bound by memory bandwidth, not by the products: standardising and
// packing the kernels, the standardisation backward, gathering two
// replicas' gradients and the SGD update, and the fused form of the last
// three (Net.Step). SetBytes counts the bytes each
// pass reads and writes, so MB/s is its bandwidth.
func BenchmarkParamPasses(b *testing.B) {
	cfg, err := model.Arch("R50x1", 10)
	if err != nil {
		b.Fatal(err)
	}
	params := randomParams(cfg, 1)
	var convs []string
	var n int64
	for _, s := range cfg.Spec() {
		if s.Kind == model.KindConv {
			convs = append(convs, s.Name)
			n += int64(params[s.Name].Len())
		}
	}
	grads, other := model.Params{}, model.Params{}
	for _, name := range convs {
		grads[name] = randomInput(3, params[name].Shape...)
		other[name] = randomInput(4, params[name].Shape...)
	}
	var a nn.Arena
	kern := map[string]*nn.HWIOKernel{}
	prepare := func() {
		a.Reset()
		for _, name := range convs {
			kern[name] = nn.StandardizePrepareHWIO(params[name], 1, 0, true, &a)
		}
	}
	b.Run("ws-prepare", func(b *testing.B) {
		b.SetBytes(4 * n * 4) // moments read w; one pass reads w, writes two packings
		for i := 0; i < b.N; i++ {
			prepare()
		}
	})
	prepare()
	b.Run("ws-backward", func(b *testing.B) {
		b.SetBytes(4 * n * 6) // sums read gs, w; ws written; affine reads gs, ws, writes dw
		for i := 0; i < b.N; i++ {
			for _, name := range convs {
				nn.StandardizeBackwardHWIO(kern[name].W, kern[name].WS, grads[name], other[name], false)
			}
		}
	})
	b.Run("gather", func(b *testing.B) {
		b.SetBytes(4 * n * 3)
		for i := 0; i < b.N; i++ {
			for _, name := range convs {
				nn.AddInPlace(other[name], grads[name])
			}
		}
	})
	b.Run("ws-sgd-fused", func(b *testing.B) {
		opt := &SGD{Momentum: 0.9}
		b.SetBytes(4 * n * 9) // sums read g0, g1, w; update reads g0, g1, w, v, writes w, v
		for i := 0; i < b.N; i++ {
			for _, name := range convs {
				v, mu, wd, _ := opt.state(name, params[name])
				nn.StandardizedSGD(params[name], v, kern[name].WS, grads[name], other[name], mu, 1e-9, wd)
			}
		}
	})
	b.Run("sgd", func(b *testing.B) {
		opt := &SGD{Momentum: 0.9}
		b.SetBytes(4 * n * 5) // reads w, g, v; writes w, v
		for i := 0; i < b.N; i++ {
			if err := opt.Step(params, grads, 1e-9); err != nil {
				b.Fatal(err)
			}
		}
	})
}
