package main

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestSecondSignalExits (issue 12, item 11): the first SIGINT cancels the
// context; a second SIGINT or SIGTERM exits at once with exitInterrupted
// (was: swallowed by signal.NotifyContext, so a command stuck in
// non-cancellable work ignored every further Ctrl-C).
func TestSecondSignalExits(t *testing.T) {
	for _, second := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		var mu sync.Mutex
		var stderr bytes.Buffer
		exited := make(chan int, 1)
		ctx, stop := interruptContext(context.Background(), &lockedBuf{mu: &mu, b: &stderr}, func(code int) { exited <- code })
		if err := syscall.Kill(syscall.Getpid(), syscall.SIGINT); err != nil {
			t.Fatal(err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("first signal did not cancel the context")
		}
		select {
		case code := <-exited:
			t.Fatalf("exited (%d) after the first signal", code)
		case <-time.After(100 * time.Millisecond):
		}
		if err := syscall.Kill(syscall.Getpid(), second); err != nil {
			t.Fatal(err)
		}
		select {
		case code := <-exited:
			if code != exitInterrupted {
				t.Errorf("exit code %d, want %d", code, exitInterrupted)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("second signal (%v) did not exit", second)
		}
		stop()
		mu.Lock()
		if !strings.Contains(stderr.String(), "second signal") {
			t.Errorf("stderr %q", stderr.String())
		}
		mu.Unlock()
	}
}

type lockedBuf struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
