package nn

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
)

// gemmShape is one benchmarked product, named after the layer it comes from.
type gemmShape struct {
	name    string
	m, n, k int
}

// benchShapes: the headline 3x3 conv of block 1 at 224 px (64 outputs, 56×56 =
// 3136 pixels, 64·3·3 = 576 deep), a 1x1 conv of block 3 at 128 px and the
// narrow block-4 shape that has to be split by rows.
var benchShapes = []gemmShape{
	{"conv3x3_56px", 64, 3136, 576},
	{"conv1x1_8px", 1024, 64, 256},
	{"conv1x1_4px", 2048, 16, 512},
}

// benchSgemm measures one product with g and reports GFLOP/s (2·m·n·k per op).
func benchSgemm(b *testing.B, g GEMM, s gemmShape, serial bool) {
	r := rand.New(rand.NewPCG(7, uint64(s.m*s.n+s.k)))
	a := randSlice(r, s.m*s.k)
	bm := randSlice(r, s.k*s.n)
	c := make([]float32, s.m*s.n)
	b.ReportAllocs()
	if serial {
		// Pin to one thread so its CPU time measures the work alone.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
	}
	cpu0 := threadCPU()
	b.ResetTimer()
	for b.Loop() {
		if serial {
			sgemmOne(g, false, false, s.m, s.n, s.k, a, s.k, bm, s.n, 0, c, s.n)
		} else {
			g.Sgemm(false, false, s.m, s.n, s.k, a, s.k, bm, s.n, 0, c, s.n)
		}
	}
	flop := 2 * float64(s.m) * float64(s.n) * float64(s.k) * float64(b.N)
	b.ReportMetric(flop/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	if cpu := threadCPU() - cpu0; serial && cpu0 > 0 && cpu > 0 && cgoSafeCPU(g) {
		// GFLOP per second of this thread's CPU time: steadier than the wall
		// clock rate when other processes share the cores.
		b.ReportMetric(flop/cpu.Seconds()/1e9, "GFLOP/cpu-s")
	}
}

// BenchmarkSgemm runs every shape on every backend, spread over all cores
// ("par") and on one goroutine ("one"). For OpenBLAS it also measures the
// alternative threading ("obthreads": OpenBLAS's own pool at GOMAXPROCS
// threads, one call, no Go split) against the default (pool of one thread,
// blocks split over goroutines).
func BenchmarkSgemm(b *testing.B) {
	for _, g := range Backends() {
		for _, s := range benchShapes {
			for _, serial := range []bool{false, true} {
				mode := "par"
				if serial {
					mode = "one"
				}
				b.Run(fmt.Sprintf("%s/%s/%s", backendKey(g), s.name, mode), func(b *testing.B) { benchSgemm(b, g, s, serial) })
			}
			if o, ok := g.(*OpenBLAS); ok {
				b.Run(fmt.Sprintf("%s/%s/obthreads", backendKey(g), s.name), func(b *testing.B) {
					o.lib.SetThreads(runtime.GOMAXPROCS(0))
					defer o.lib.SetThreads(1)
					benchSgemm(b, libOnly{o}, s, false)
				})
			}
		}
	}
}

// libOnly calls OpenBLAS directly, without this package's split.
type libOnly struct{ o *OpenBLAS }

func (l libOnly) Name() string { return l.o.Name() }
func (l libOnly) Sgemm(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	l.o.lib.Sgemm(transA, transB, m, n, k, a, lda, b, ldb, beta, c, ldc)
}

// cgoSafeCPU reports whether thread CPU time covers all of g's work when it
// runs on one goroutine (true for this package's backends; OpenBLAS runs on
// the calling thread because its pool is set to one thread).
func cgoSafeCPU(g GEMM) bool {
	_, ok := g.(serialGEMM)
	return ok && backendKey(g) != BackendGonum
}
