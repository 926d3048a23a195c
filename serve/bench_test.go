package serve_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bitrun/bitrun/export"
	"github.com/bitrun/bitrun/model"
	"github.com/bitrun/bitrun/runtime"
	"github.com/bitrun/bitrun/serve"
)

// exportArch exports a randomly initialised arch at res for benchmarks.
func exportArch(b *testing.B, arch string, res int) string {
	b.Helper()
	requireORT(b)
	cfg, err := model.Arch(arch, 10)
	if err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(b.TempDir(), arch+".onnx")
	if _, err := export.Export(context.Background(), path, cfg, model.Init(cfg, 1), export.Options{Resolution: res}); err != nil {
		b.Fatal(err)
	}
	return path
}

// BenchmarkServe compares offline batched inference (runtime.Run on
// preprocessed batches of 16, what `bitrun bench` measures) with the HTTP
// server under 32 concurrent clients sending one JPEG each (decode,
// preprocessing, batching, JSON included). Both report images/s; compare
// medians of -count runs.
func BenchmarkServe(b *testing.B) {
	for _, bc := range []struct {
		arch string
		res  int
	}{{"tiny", 64}, {"small", 64}} {
		path := exportArch(b, bc.arch, bc.res)
		b.Run(fmt.Sprintf("%s-%d/offline-batch16", bc.arch, bc.res), func(b *testing.B) {
			p, err := runtime.Open(path, runtime.Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer p.Close()
			const batch = 16
			x := make([]float32, batch*3*bc.res*bc.res)
			rng := rand.New(rand.NewPCG(1, 1))
			for i := range x {
				x[i] = rng.Float32()*2 - 1
			}
			shape := []int64{batch, 3, int64(bc.res), int64(bc.res)}
			p.Run(context.Background(), x, shape) // warm-up
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := p.Run(context.Background(), x, shape); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "images/s")
		})
		b.Run(fmt.Sprintf("%s-%d/http-conc32-maxbatch16", bc.arch, bc.res), func(b *testing.B) {
			_, cl, _ := startORT(b, path, serve.Config{}, serve.Options{MaxBatch: 16, Name: "m"})
			img := testImages(b, 1)[0]
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			for range 32 {
				wg.Go(func() {
					for next.Add(1) <= int64(b.N) {
						if _, err := cl.Predict(context.Background(), "m", img, 5); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "images/s")
		})
	}
}
