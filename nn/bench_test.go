package nn

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/bitrun/bitrun/internal/cputime"
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
	cpu0, proc0 := threadCPU(), processCPU()
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
	// GFLOP per second of CPU time (this thread's when serial, the whole
	// process's otherwise): steadier than the wall-clock rate when other
	// processes share the cores.
	cpu := processCPU() - proc0
	if serial {
		cpu = threadCPU() - cpu0
	}
	if cpu0 > 0 && cpu > 0 && cgoSafeCPU(g) {
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

// threadCPU and processCPU read the calling thread's and the process's CPU
// time (0 where the OS does not say).
func threadCPU() time.Duration  { d, _ := cputime.Thread(); return d }
func processCPU() time.Duration { d, _ := cputime.Process(); return d }

// cgoSafeCPU reports whether thread CPU time covers all of g's work when it
// runs on one goroutine (true for this package's backends; OpenBLAS runs on
// the calling thread because its pool is set to one thread).
func cgoSafeCPU(g GEMM) bool {
	_, ok := g.(serialGEMM)
	return ok && backendKey(g) != BackendGonum
}

// convShapeBench is one benchmarked convolution from R50x1 at 128 px.
type convShapeBench struct {
	name                       string
	n, c, h, o, k, stride, pad int
}

var convBenchShapes = []convShapeBench{
	{"root7x7_b8", 8, 3, 128, 64, 7, 2, 3},
	{"b1_3x3_b8", 8, 64, 32, 64, 3, 1, 1},
	{"b1_3x3_b1", 1, 64, 32, 64, 3, 1, 1},
	{"b4_1x1_b8", 8, 512, 4, 2048, 1, 1, 0},
}

// benchConv measures Conv2D with backend g and reports GFLOP/s.
func benchConv(b *testing.B, g GEMM, s convShapeBench) {
	prev := Backend()
	SetBackend(g)
	defer SetBackend(prev)
	r := rand.New(rand.NewPCG(11, uint64(s.c*s.o)))
	x := randTensor(r, s.n, s.c, s.h, s.h)
	w := randTensor(r, s.o, s.c, s.k, s.k)
	oh := ConvOutSize(s.h, s.k, s.stride, s.pad)
	flop := 2 * float64(s.n*s.o*oh*oh) * float64(s.c*s.k*s.k)
	b.ReportAllocs()
	cpu0 := processCPU()
	b.ResetTimer()
	for b.Loop() {
		Conv2D(x, w, s.stride, s.pad)
	}
	b.ReportMetric(flop*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	if cpu := processCPU() - cpu0; cpu0 > 0 && cpu > 0 && cgoSafeCPU(g) {
		// Per CPU-second over all threads: the work the cores did, whatever
		// else shares them.
		b.ReportMetric(flop*float64(b.N)/cpu.Seconds()/1e9, "GFLOP/cpu-s")
	}
}

// BenchmarkConv2D runs R50x1 convolutions (batch 8 and 1) on every backend.
func BenchmarkConv2D(b *testing.B) {
	for _, g := range Backends() {
		for _, s := range convBenchShapes {
			b.Run(backendKey(g)+"/"+s.name, func(b *testing.B) { benchConv(b, g, s) })
		}
	}
}
