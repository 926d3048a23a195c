// Package dynlib is the shared dlopen layer of bitrun's native boundaries
// (internal/openblas, internal/turbojpeg): it loads a shared library at run
// time, resolves the symbols a boundary asks for and reports the file it came
// from, so those packages keep only their call trampolines. Binaries built
// with cgo therefore start on machines without the libraries; without cgo
// only Candidates and First are compiled and each boundary's stub explains what to do.
package dynlib

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// ErrMissingSymbol is wrapped when a library lacks a required symbol.
var ErrMissingSymbol = errors.New("required symbol missing")

// Candidates is the list of paths a boundary's Open tries: only the value of
// the environment variable env when it is set, so a wrong explicit path is an
// error rather than a silent fallback, and defaults otherwise.
func Candidates(env string, defaults ...string) []string {
	if p := os.Getenv(env); p != "" {
		return []string{p}
	}
	return defaults
}

// First calls open on each candidate path in order and returns the first
// library that opens. When none does, the error wraps unavailable, says what
// to do (hint) and lists every failure ("; "-separated), each with the prefix
// "<unavailable>: " removed.
func First[T any](candidates []string, unavailable error, hint string, open func(path string) (T, error)) (T, error) {
	var msgs []string
	for _, p := range candidates {
		l, err := open(p)
		if err == nil {
			return l, nil
		}
		msgs = append(msgs, strings.TrimPrefix(err.Error(), unavailable.Error()+": "))
	}
	var zero T
	return zero, fmt.Errorf("%w: no usable library (%s): %s", unavailable, hint, strings.Join(msgs, "; "))
}
