package zoo

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestLockLeavesNoFiles (issue 13): releasing a lock removes its .lock file
// (stale ones piled up in .locks/), and removal never lets two holders in:
// a waiter that ends up holding a removed file locks afresh.
func TestLockLeavesNoFiles(t *testing.T) {
	c := cache{dir: t.TempDir()}
	var holders, most atomic.Int32
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 50 {
				unlock, err := c.lock(context.Background(), "BiT-M-R50x1.npz", nil)
				if err != nil {
					t.Error(err)
					return
				}
				// Hold the lock a moment, so that a second holder would
				// overlap, and keep the highest count seen (CAS: a plain
				// load-then-store could lose it).
				n := holders.Add(1)
				for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
				}
				time.Sleep(100 * time.Microsecond)
				holders.Add(-1)
				unlock()
			}
		})
	}
	wg.Wait()
	if most.Load() != 1 {
		t.Errorf("%d holders at once", most.Load())
	}
	left, err := filepath.Glob(filepath.Join(c.dir, lockDirName, "*"))
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Errorf("lock files left behind: %v", left)
	}
	if _, err := os.Stat(filepath.Join(c.dir, lockDirName)); err != nil {
		t.Errorf("lock folder: %v", err)
	}
}
