package train

import (
	"fmt"
	"strings"
	"testing"

	"github.com/bitrun/bitrun/model"
	"github.com/bitrun/bitrun/nn"
)

// trainFlops is the multiply-add×2 count of one training step per image:
// forward convs + linear, and the backward's two products per layer (input
// and weight gradients; the root conv's input gradient is not computed).
func trainFlops(cfg model.Config, res int) float64 {
	var fwd, rootFwd float64
	h := res
	conv := func(cin, cout, k, stride, pad int) float64 {
		o := nn.ConvOutSize(h, k, stride, pad)
		return 2 * float64(cin*cout*k*k*o*o)
	}
	rootFwd = conv(3, cfg.RootWidth, 7, 2, 3)
	h = nn.ConvOutSize(nn.ConvOutSize(h, 7, 2, 3)+2, 3, 2, 0)
	in := cfg.RootWidth
	for b := 0; b < 4; b++ {
		out, mid := cfg.Widths[b], cfg.Widths[b]/4
		for u := 0; u < cfg.Units[b]; u++ {
			stride := unitStride(b, u)
			fwd += 2 * float64(in*mid*h*h) // conv a
			if cfg.HasProj(b, u) {
				fwd += conv(in, out, 1, stride, 0)
			}
			fwd += conv(mid, mid, 3, stride, 1)
			h = nn.ConvOutSize(h, 3, stride, 1)
			fwd += 2 * float64(mid*out*h*h) // conv c
			in = out
		}
	}
	fwd += 2 * float64(in*cfg.Classes)
	return rootFwd*2 + fwd*3
}

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
	flops := trainFlops(cfg, res) * float64(batch)
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
			cpu0 := processCPU()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				step()
			}
			sec := b.Elapsed().Seconds() / float64(b.N)
			b.ReportMetric(float64(batch)/sec, "images/s")
			b.ReportMetric(flops/sec/1e9, "GFLOP/s")
			if cpu := processCPU() - cpu0; cpu0 > 0 && cpu > 0 {
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
