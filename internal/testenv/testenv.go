// Package testenv is the gate of tests that need a real component outside
// Go (ONNX Runtime, OpenBLAS, libjpeg-turbo, Chromium): without it they skip
// with the reason, and fail instead when the component's BITRUN_REQUIRE_*
// variable is "1", as make test sets it, so CI cannot pass by skipping. It is
// for tests only.
package testenv

import (
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
