//go:build !cgo

package ort

import (
	"context"
)

// Load always fails without cgo.
func Load(explicit string) (string, error) { return "", ErrNoCgo }

// Loaded reports nothing loaded without cgo.
func Loaded() (path, version string) { return "", "" }

// Session is unusable without cgo.
type Session struct{}

// NewSession always fails without cgo.
func NewSession(modelPath string, opts SessionOptions) (*Session, error) { return nil, ErrNoCgo }

// Inputs is empty without cgo.
func (s *Session) Inputs() []IOInfo { return nil }

// Outputs is empty without cgo.
func (s *Session) Outputs() []IOInfo { return nil }

// Metadata is empty without cgo.
func (s *Session) Metadata() map[string]string { return nil }

// Run always fails without cgo.
func (s *Session) Run(ctx context.Context, data []float32, shape []int64) ([]Tensor, error) {
	return nil, ErrNoCgo
}

// Close does nothing without cgo.
func (s *Session) Close() error { return nil }
