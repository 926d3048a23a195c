package testenv

import (
	"errors"
	"fmt"
	"testing"
)

// recorder is a testing.TB that records how the gate ended the test; its
// Fatalf and Skipf stop the gate as the real ones do, by unwinding to run.
type recorder struct {
	testing.TB
	fatal, skip string
}

type stopped struct{}

func (r *recorder) Helper() {}
func (r *recorder) Fatalf(format string, a ...any) {
	r.fatal = fmt.Sprintf(format, a...)
	panic(stopped{})
}
func (r *recorder) Skipf(format string, a ...any) {
	r.skip = fmt.Sprintf(format, a...)
	panic(stopped{})
}

func (r *recorder) run(f func()) {
	defer func() {
		if p := recover(); p != nil && p != (stopped{}) {
			panic(p)
		}
	}()
	f()
}

func TestRequire(t *testing.T) {
	const env = "BITRUN_REQUIRE_TESTENV_TEST"
	missing := errors.New("libx.so: cannot open")
	for _, c := range []struct {
		name, envVal string
		err          error
		fatal, skip  string
	}{
		{"loaded", "1", nil, "", ""},
		{"missing", "", missing, "", "X not available: libx.so: cannot open"},
		{"required", "1", missing, "X required (BITRUN_REQUIRE_TESTENV_TEST=1): libx.so: cannot open", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv(env, c.envVal)
			r := &recorder{TB: t}
			r.run(func() { Require(r, env, "X", c.err) })
			if r.fatal != c.fatal || r.skip != c.skip {
				t.Fatalf("fatal %q skip %q, want %q %q", r.fatal, r.skip, c.fatal, c.skip)
			}
		})
	}
}

type closer struct{ closed int }

func (c *closer) Close() error { c.closed++; return nil }

// TestOpen: what Open loaded is handed back and closed once, when the test
// that opened it ends; a load that fails is gated as Require gates it.
func TestOpen(t *testing.T) {
	const env = "BITRUN_REQUIRE_TESTENV_TEST"
	c := &closer{}
	t.Run("loaded", func(t *testing.T) {
		got := Open(t, env, "X", func() (*closer, error) { return c, nil })
		if got != c || c.closed != 0 {
			t.Fatalf("Open = %p closed %d times, want %p open", got, c.closed, c)
		}
	})
	if c.closed != 1 {
		t.Errorf("closed %d times when the test ended, want 1", c.closed)
	}
	t.Setenv(env, "")
	r := &recorder{TB: t}
	r.run(func() {
		Open(r, env, "X", func() (*closer, error) { return nil, errors.New("libx.so: cannot open") })
	})
	if want := "X not available: libx.so: cannot open"; r.skip != want {
		t.Errorf("skip %q, want %q", r.skip, want)
	}
}
