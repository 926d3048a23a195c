//go:build !cgo

package openblas

import (
	"errors"
	"strings"
	"testing"
)

// TestNoCgo checks that a build without cgo still compiles and says how to
// enable OpenBLAS.
func TestNoCgo(t *testing.T) {
	_, err := Open()
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "CGO_ENABLED=1") {
		t.Fatalf("Open without cgo: %v", err)
	}
}
