// Package testwait bounds how long a test waits: for a call that must
// return at once (a read of a FIFO or a device that once blocked forever)
// and for a state that a server reaches in the background. It is for tests
// only.
package testwait

import (
	"testing"
	"time"
)

// Returns runs f on its own goroutine and returns f's error. When f has not
// returned after limit it fails t at once, saying that what still blocks;
// the goroutine is left behind (a test binary that ends frees it).
func Returns(t testing.TB, limit time.Duration, what string, f func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-time.After(limit):
		t.Fatalf("%s still blocks after %v", what, limit)
		return nil
	}
}

// Until calls cond every interval until it returns nil. When cond has not
// returned nil after limit it fails t with cond's last error, which should
// say what was seen instead.
func Until(t testing.TB, limit, interval time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not in %v: %v", limit, err)
		}
		time.Sleep(interval)
	}
}
