package cputime

import (
	"math"
	goruntime "runtime"
	"testing"
	"time"
)

// burn spins until read reports 30 ms more CPU time (however busy the
// machine); it must within 20 s of wall time.
func burn(t *testing.T, what string, read func() (time.Duration, bool)) {
	t.Helper()
	c0, ok := read()
	if !ok {
		if goruntime.GOOS == "linux" {
			t.Fatalf("%s: not reported on Linux", what)
		}
		t.Skipf("%s: not reported on %s", what, goruntime.GOOS)
	}
	deadline := time.Now().Add(20 * time.Second)
	x := 0.0
	for time.Now().Before(deadline) {
		for range 100000 {
			x += math.Sqrt(x + 1)
		}
		if c1, _ := read(); c1-c0 >= 30*time.Millisecond {
			return
		}
	}
	t.Errorf("%s: CPU time did not grow by 30 ms in 20 s of busy loop (x=%v)", what, x)
}

func TestProcess(t *testing.T) { burn(t, "Process", Process) }

func TestThread(t *testing.T) {
	goruntime.LockOSThread()
	defer goruntime.UnlockOSThread()
	burn(t, "Thread", Thread)
}

// Time a thread does not spend on the CPU (sleeping) is not counted.
func TestSleepIsNotCPU(t *testing.T) {
	c0, ok := Process()
	if !ok {
		t.Skip("no process CPU time on this OS")
	}
	time.Sleep(200 * time.Millisecond)
	if c1, _ := Process(); c1-c0 > 150*time.Millisecond {
		t.Errorf("200 ms of sleep counted as %v of CPU time", c1-c0)
	}
}
