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
	helpers := 0
	if n > 1 {
		helpers = acquireHelpers(min(n, runtime.GOMAXPROCS(0)) - 1)
	}
	if helpers == 0 {
		for i := 0; i < n; i++ {
			fn(i)
		}
		return
	}
	t := taskPool.Get().(*task)
	t.fn, t.n = fn, n
	t.next.Store(0)
	t.wg.Add(helpers)
	startWorkers(int(helpersBusy.Load())) // one worker per busy helper slot
	helpersDispatched.Add(int64(helpers))
	for h := 0; h < helpers; h++ {
		workCh <- t
	}
	t.loop()
	t.wg.Wait()
	t.fn = nil
	taskPool.Put(t)
}

// task is one ParallelFor region, shared by the caller and its helpers.
type task struct {
	fn   func(i int)
	n    int
	next atomic.Int64
	wg   sync.WaitGroup
}

func (t *task) loop() {
	for {
		i := int(t.next.Add(1) - 1)
		if i >= t.n {
			return
		}
		t.fn(i)
	}
}

var (
	taskPool = sync.Pool{New: func() any { return new(task) }}
	// workCh feeds the helper goroutines. They live for the life of the
	// process (like the runtime's own workers), idle on this channel, and
	// save each parallel region the cost of starting goroutines.
	workCh         = make(chan *task, 256)
	workersMu      sync.Mutex
	workersLive    int
	workersStarted atomic.Int32

	// helpersDispatched counts helper hand-offs, for tests that check a
	// kernel really spreads its work.
	helpersDispatched atomic.Int64
)

// startWorkers makes sure at least n helper goroutines exist.
func startWorkers(n int) {
	if workersStarted.Load() >= int32(n) {
		return
	}
	workersMu.Lock()
	defer workersMu.Unlock()
	for ; workersLive < n; workersLive++ {
		workersStarted.Add(1)
		go func() {
			for t := range workCh {
				t.loop()
				// Hand the core back as soon as this helper runs out of work,
				// so the goroutines still busy (say, with the last image of a
				// batch) can split their own work again.
				releaseHelpers(1)
				t.wg.Done()
			}
		}()
	}
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
