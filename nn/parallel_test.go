package nn

import (
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
)

// TestParallelFor checks that every index runs exactly once, also when
// regions nest and when several goroutines start regions at once, and that
// the helper budget is returned afterwards.
func TestParallelFor(t *testing.T) {
	for _, n := range []int{0, 1, 2, 7, 1000} {
		hits := make([]atomic.Int32, n)
		ParallelFor(n, func(i int) {
			// Nested region: must not deadlock or lose work.
			ParallelFor(3, func(int) { hits[i].Add(1) })
		})
		for i := range hits {
			if got := hits[i].Load(); got != 3 {
				t.Fatalf("n=%d: index %d ran %d/3 times", n, i, got)
			}
		}
	}
	var wg sync.WaitGroup
	var total atomic.Int64
	for range 8 {
		wg.Go(func() {
			for range 50 {
				ParallelFor(17, func(i int) { total.Add(int64(i)) })
			}
		})
	}
	wg.Wait()
	if want := int64(8 * 50 * (16 * 17 / 2)); total.Load() != want {
		t.Fatalf("concurrent regions summed %d, want %d", total.Load(), want)
	}
	if b := helpersBusy.Load(); b != 0 {
		t.Fatalf("%d helper slots still held after all regions finished", b)
	}
}

// TestBatchOneParallel checks that the forward kernels hand work to other
// cores at batch 1 (a single image has no batch loop to split).
func TestBatchOneParallel(t *testing.T) {
	prev := runtime.GOMAXPROCS(2)
	defer runtime.GOMAXPROCS(prev)
	r := rand.New(rand.NewPCG(23, 24))
	x := randTensor(r, 1, 64, 32, 32)
	w := randTensor(r, 64, 64, 3, 3)
	gamma, beta := make([]float32, 64), make([]float32, 64)
	for i := range gamma {
		gamma[i] = 1
	}
	forEachBackend(t, func(t *testing.T, g GEMM) {
		for _, k := range []struct {
			name string
			run  func()
		}{
			{"Conv2D 3x3", func() { Conv2D(x, w, 1, 1) }},
			{"GroupNormReLU", func() { GroupNormReLU(x, 32, gamma, beta) }},
			{"ReLUInPlace", func() { ReLUInPlace(x.Clone()) }},
		} {
			before := helpersDispatched.Load()
			k.run()
			if helpersDispatched.Load() == before {
				t.Errorf("%s at batch 1 ran on one goroutine", k.name)
			}
		}
		// 1x1 conv on the same image (the direct path: the product is the
		// only work, and gonum parallelises that with its own goroutines).
		if _, ok := g.(Gonum); ok {
			return
		}
		w1 := randTensor(r, 128, 64, 1, 1)
		before := helpersDispatched.Load()
		Conv2D(x, w1, 1, 0)
		if helpersDispatched.Load() == before {
			t.Errorf("1x1 Conv2D at batch 1 ran on one goroutine")
		}
	})
}
