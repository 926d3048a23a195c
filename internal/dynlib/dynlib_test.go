package dynlib

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

var errGone = errors.New("lib: unavailable")

func TestFirst(t *testing.T) {
	open := func(p string) (string, error) {
		if strings.HasPrefix(p, "good") {
			return "opened " + p, nil
		}
		return "", fmt.Errorf("%w: %s: no such file", errGone, p)
	}
	if l, err := First([]string{"a", "good1", "good2"}, errGone, "install it", open); err != nil || l != "opened good1" {
		t.Fatalf("got %q %v", l, err)
	}
	l, err := First([]string{"a", "b"}, errGone, "install it", open)
	if !errors.Is(err, errGone) || l != "" || err.Error() != "lib: unavailable: no usable library (install it): a: no such file; b: no such file" {
		t.Fatalf("got %q %v", l, err)
	}
}

func TestCandidates(t *testing.T) {
	t.Setenv("BITRUN_DYNLIB_TEST_LIB", "")
	if c := Candidates("BITRUN_DYNLIB_TEST_LIB", "a.so", "b.so"); len(c) != 2 || c[0] != "a.so" {
		t.Fatalf("unset: %q", c)
	}
	t.Setenv("BITRUN_DYNLIB_TEST_LIB", "/x/lib.so")
	if c := Candidates("BITRUN_DYNLIB_TEST_LIB", "a.so", "b.so"); len(c) != 1 || c[0] != "/x/lib.so" {
		t.Fatalf("set: %q, want only the explicit path", c)
	}
}
