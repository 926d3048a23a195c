package onnxtest

import (
	"testing"

	"github.com/bitrun/bitrun/internal/testenv"
)

// EnvRequire names the environment variable that turns a missing ONNX
// Runtime from a skip into a failure when set to "1" (make test sets it).
const EnvRequire = "BITRUN_REQUIRE_ORT"

// Require is the gate of every test that needs ONNX Runtime: given the error
// of loading it (nil when it loaded), it does nothing, fails t when
// EnvRequire is "1", or else skips t with the reason.
func Require(t testing.TB, loadErr error) {
	t.Helper()
	testenv.Require(t, EnvRequire, "ONNX Runtime", loadErr)
}
