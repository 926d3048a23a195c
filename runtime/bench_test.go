package runtime

import (
	"context"
	"fmt"
	"math/rand/v2"
	goruntime "runtime"
	"testing"

	"github.com/bitrun/bitrun/export"
	"github.com/bitrun/bitrun/model"
)

// tinyBiT exports the tiny BiT config (10 classes, fixed seed) to dir.
func tinyBiT(b testing.TB) string {
	b.Helper()
	cfg, err := model.Arch("tiny", 10)
	if err != nil {
		b.Fatal(err)
	}
	path := b.TempDir() + "/tiny.onnx"
	if _, err := export.Export(context.Background(), path, cfg, model.Init(cfg, 1), export.Options{}); err != nil {
		b.Fatal(err)
	}
	return path
}

// BenchmarkPredictorParallel compares the two ways of serving concurrent
// callers: one shared session (ORT's intra-op pool spans every core and
// concurrent Runs share it) against a pool of one single-threaded session
// per core. Sizes: tiny BiT at 64×64, batch 1 and 8; callers = 2×cores.
func BenchmarkPredictorParallel(b *testing.B) {
	requireORT(b)
	path := tinyBiT(b)
	cores := goruntime.GOMAXPROCS(0)
	for _, batch := range []int{1, 8} {
		rng := rand.New(rand.NewPCG(1, 1))
		x := randSlice(rng, batch*3*64*64)
		shape := []int64{int64(batch), 3, 64, 64}
		run := func(b *testing.B, pick func() *Predictor) {
			b.ReportAllocs()
			b.SetParallelism(2)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := pick().Run(context.Background(), x, shape); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "images/s")
		}
		b.Run(fmt.Sprintf("shared/batch=%d", batch), func(b *testing.B) {
			p, err := Open(path, Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer p.Close()
			run(b, func() *Predictor { return p })
		})
		b.Run(fmt.Sprintf("pool%d/batch=%d", cores, batch), func(b *testing.B) {
			p, err := Open(path, Options{IntraThreads: 1, Sessions: cores})
			if err != nil {
				b.Fatal(err)
			}
			defer p.Close()
			run(b, func() *Predictor { return p })
		})
	}
}
