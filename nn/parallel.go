package nn

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// helpersBusy counts the goroutines that parallel regions of this package
// have started on top of their callers. A region only starts helpers while
// fewer than GOMAXPROCS-1 are busy, so nested regions (a product inside a
// loop over images, say) and concurrent callers run inline instead of
// oversubscribing the cores.
var helpersBusy atomic.Int32

// acquireHelpers reserves up to want helper goroutines and returns how many
// it got (possibly 0).
func acquireHelpers(want int) int {
	if want <= 0 {
		return 0
	}
	limit := int32(runtime.GOMAXPROCS(0) - 1)
	for {
		cur := helpersBusy.Load()
		free := limit - cur
		if free <= 0 {
			return 0
		}
		n := min(int32(want), free)
		if helpersBusy.CompareAndSwap(cur, cur+n) {
			return int(n)
		}
	}
}

func releaseHelpers(n int) {
	if n > 0 {
		helpersBusy.Add(-int32(n))
	}
}

// ParallelFor runs fn(i) for i in [0, n) on the calling goroutine plus up to
// GOMAXPROCS-1 helpers, handing out indices dynamically. When every core is
// already working for another ParallelFor (nested or concurrent calls) it
// runs the loop inline. fn must be safe to call concurrently.
func ParallelFor(n int, fn func(i int)) {
	parallelRun(n, func(_, i int) { fn(i) })
}

// parallelRun is ParallelFor passing fn the index of the goroutine (0 for
// the caller, 1.. for helpers) for per-goroutine scratch; it returns the
// number of goroutines used.
func parallelRun(n int, fn func(worker, i int)) int {
	helpers := 0
	if n > 1 {
		helpers = acquireHelpers(min(n, runtime.GOMAXPROCS(0)) - 1)
	}
	if helpers == 0 {
		for i := 0; i < n; i++ {
			fn(0, i)
		}
		return 1
	}
	var next atomic.Int64
	loop := func(w int) {
		for {
			i := int(next.Add(1) - 1)
			if i >= n {
				return
			}
			fn(w, i)
		}
	}
	var wg sync.WaitGroup
	wg.Add(helpers)
	for w := 1; w <= helpers; w++ {
		go func() {
			defer wg.Done()
			loop(w)
			// Hand the core back as soon as this helper runs out of work, so
			// the goroutines still busy (say, with the last image of a batch)
			// can split their own work again.
			releaseHelpers(1)
		}()
	}
	loop(0)
	wg.Wait()
	return helpers + 1
}

// parallelChunks splits [0, n) into about one chunk per available goroutine
// (at least minChunk items each) and runs fn(lo, hi) on each.
func parallelChunks(n, minChunk int, fn func(lo, hi int)) {
	if n <= 0 {
		return
	}
	parts := min(runtime.GOMAXPROCS(0), max(1, n/max(1, minChunk)))
	if parts <= 1 {
		fn(0, n)
		return
	}
	// Several chunks per goroutine so a descheduled helper does not stall
	// the region.
	parts = min(n, parts*4)
	size := (n + parts - 1) / parts
	parts = (n + size - 1) / size
	ParallelFor(parts, func(i int) {
		lo := i * size
		fn(lo, min(n, lo+size))
	})
}
