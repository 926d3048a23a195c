package testwait

import (
	"errors"
	"fmt"
	"runtime"
	"testing"
	"time"
)

// fatal is a testing.TB whose Fatalf records the message and ends the
// goroutine, as the real one does.
type fatal struct {
	testing.TB
	msg string
}

func (f *fatal) Helper() {}
func (f *fatal) Fatalf(format string, a ...any) {
	f.msg = fmt.Sprintf(format, a...)
	runtime.Goexit()
}

// run calls g on a goroutine of its own, which Fatalf may end.
func (f *fatal) run(g func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		g()
	}()
	<-done
}

func TestReturns(t *testing.T) {
	want := errors.New("refused")
	f := &fatal{TB: t}
	var got error
	f.run(func() { got = Returns(f, time.Second, "x", func() error { return want }) })
	if got != want || f.msg != "" {
		t.Errorf("Returns = %v (fatal %q), want %v", got, f.msg, want)
	}
	block := make(chan struct{})
	defer close(block)
	f.run(func() { Returns(f, 10*time.Millisecond, "reading x", func() error { <-block; return nil }) })
	if want := "reading x still blocks after 10ms"; f.msg != want {
		t.Errorf("fatal %q, want %q", f.msg, want)
	}
}

func TestUntil(t *testing.T) {
	f := &fatal{TB: t}
	n := 0
	f.run(func() {
		Until(f, time.Second, time.Millisecond, func() error {
			if n++; n < 3 {
				return fmt.Errorf("n = %d", n)
			}
			return nil
		})
	})
	if n != 3 || f.msg != "" {
		t.Errorf("%d calls (fatal %q), want 3", n, f.msg)
	}
	f.run(func() {
		Until(f, 5*time.Millisecond, time.Millisecond, func() error { return errors.New("models []") })
	})
	if want := "not in 5ms: models []"; f.msg != want {
		t.Errorf("fatal %q, want %q", f.msg, want)
	}
}
