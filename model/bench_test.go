//go:build unix

package model_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/bitrun/bitrun/internal/cputime"
	"github.com/bitrun/bitrun/internal/testmodel"
	"github.com/bitrun/bitrun/model"
	"github.com/bitrun/bitrun/nn"
)

// benchForward measures Model.Forward of arch at size×size pixels on batches
// of batch images with GEMM backend g, and reports images/s.
func benchForward(b *testing.B, arch string, size, batch int, g nn.GEMM) {
	cfg, err := model.Arch(arch, 1000)
	if err != nil {
		b.Fatal(err)
	}
	m, err := model.New(cfg, testmodel.Random(cfg, 1, testmodel.Spread{}))
	if err != nil {
		b.Fatal(err)
	}
	prev := nn.Backend()
	nn.SetBackend(g)
	defer nn.SetBackend(prev)
	r := rand.New(rand.NewPCG(2, 3))
	x := nn.New(batch, 3, size, size)
	for i := range x.Data {
		x.Data[i] = float32(2*r.Float64() - 1)
	}
	logits, _ := m.Forward(x) // prepares the standardised kernels
	for _, v := range logits.Data {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			b.Fatalf("non-finite logit %v", v)
		}
	}
	b.ReportAllocs()
	cpu0, ok := cputime.Process()
	b.ResetTimer()
	for b.Loop() {
		m.Forward(x)
	}
	b.ReportMetric(float64(batch*b.N)/b.Elapsed().Seconds(), "images/s")
	// CPU seconds (all threads, GC included) per image: on a shared machine
	// this shows the work done even when the wall clock is inflated.
	if cpu1, _ := cputime.Process(); ok {
		b.ReportMetric((cpu1-cpu0).Seconds()/float64(batch*b.N), "cpu-s/image")
	}
}

// BenchmarkForward: R50x1 at 128×128, batch 8 (and batch 1), per GEMM
// backend (gonum, a reference several times slower, is left out). Run with
// -benchtime 3x: one batch-8 forward is about 22 GFLOP.
func BenchmarkForward(b *testing.B) {
	for _, g := range nn.Backends() {
		key := strings.Fields(g.Name())[0]
		if key == nn.BackendGonum {
			continue
		}
		for _, batch := range []int{8, 1} {
			b.Run(fmt.Sprintf("R50x1/128px/batch%d/%s", batch, key), func(b *testing.B) {
				benchForward(b, "R50x1", 128, batch, g)
			})
		}
	}
}
