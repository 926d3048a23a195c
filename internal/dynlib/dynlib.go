// Package dynlib is the shared dlopen layer of bitrun's native boundaries
// (internal/openblas, internal/turbojpeg): it loads a shared library at run
// time, resolves the symbols a boundary asks for and reports the file it came
// from, so those packages keep only their call trampolines. Binaries built
// with cgo therefore start on machines without the libraries; without cgo
// only FirstOf is compiled and each boundary's stub explains what to do.
package dynlib

import (
	"errors"
	"strings"
)

// ErrMissingSymbol is wrapped when a library lacks a required symbol.
var ErrMissingSymbol = errors.New("required symbol missing")

// FirstOf calls open on each candidate path in order and returns the first
// library that opens. When none does, ok is false and tried lists every
// failure ("; "-separated), each with the prefix "<unavailable>: " removed
// so a caller can wrap them all in one error.
func FirstOf[T any](candidates []string, unavailable error, open func(path string) (T, error)) (lib T, tried string, ok bool) {
	var msgs []string
	for _, p := range candidates {
		l, err := open(p)
		if err == nil {
			return l, "", true
		}
		msgs = append(msgs, strings.TrimPrefix(err.Error(), unavailable.Error()+": "))
	}
	var zero T
	return zero, strings.Join(msgs, "; "), false
}
