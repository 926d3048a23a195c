//go:build cgo && linux

package dynlib

import (
	"errors"
	"strings"
	"testing"
)

// TestOpenLibc loads the C library every cgo binary already maps: present
// symbols resolve, absent ones are nil, and the path is the real file.
func TestOpenLibc(t *testing.T) {
	l, err := Open("libc.so.6", []string{"strlen", "bitrun_no_such_symbol"}, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := l.Close(); err != nil {
			t.Error(err)
		}
	}()
	if s := l.Syms(); len(s) != 2 || s[0] == nil || s[1] != nil {
		t.Fatalf("symbols %v: want strlen resolved and the other nil", s)
	}
	if !strings.HasPrefix(l.Path(), "/") || !strings.Contains(l.Path(), "libc") {
		t.Fatalf("path %q: want the absolute file of libc", l.Path())
	}
}

// TestOpenRequired: a required symbol the library lacks is an error that
// names it and wraps ErrMissingSymbol.
func TestOpenRequired(t *testing.T) {
	_, err := Open("libc.so.6", []string{"strlen", "bitrun_no_such_symbol"}, 2)
	if !errors.Is(err, ErrMissingSymbol) || !strings.Contains(err.Error(), "has no bitrun_no_such_symbol") {
		t.Fatalf("err = %v", err)
	}
}

func TestOpenMissing(t *testing.T) {
	_, err := Open("/nonexistent/libbitrun-nothing.so", []string{"x"}, 1)
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/libbitrun-nothing.so") {
		t.Fatalf("err = %v, want dlopen's message naming the file", err)
	}
}
