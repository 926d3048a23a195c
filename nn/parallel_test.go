package nn

import (
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
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for rep := 0; rep < 50; rep++ {
				ParallelFor(17, func(i int) { total.Add(int64(i)) })
			}
		}()
	}
	wg.Wait()
	if want := int64(8 * 50 * (16 * 17 / 2)); total.Load() != want {
		t.Fatalf("concurrent regions summed %d, want %d", total.Load(), want)
	}
	if b := helpersBusy.Load(); b != 0 {
		t.Fatalf("%d helper slots still held after all regions finished", b)
	}
}
