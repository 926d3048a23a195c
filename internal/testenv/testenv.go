// Package testenv is the gate of tests that need a real component outside
// Go (ONNX Runtime, OpenBLAS, libjpeg-turbo, Chromium): without it they skip
// with the reason, and fail instead when the component's BITRUN_REQUIRE_*
// variable is "1", as make test sets it, so CI cannot pass by skipping. It is
// for tests only.
package testenv

import (
	"io"
	"os"
	"testing"
)

// Require does nothing when err is nil (the component loaded). Otherwise it
// fails t when the environment variable env is "1" and skips t when not;
// both say what is missing and why (err).
func Require(t testing.TB, env, what string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if os.Getenv(env) == "1" {
		t.Fatalf("%s required (%s=1): %v", what, env, err)
	}
	t.Skipf("%s not available: %v", what, err)
}

// Open loads a component with open and gates t on the result as [Require]
// does; what it loaded is closed when t ends, and a failing Close fails t.
func Open[C io.Closer](t testing.TB, env, what string, open func() (C, error)) C {
	t.Helper()
	c, err := open()
	Require(t, env, what, err)
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("closing %s: %v", what, err)
		}
	})
	return c
}
