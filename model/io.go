package model

// API contract for checkpoint I/O and initialisation (filled in by the
// checkpoint work; bodies may move to other files of this package).

import (
	"errors"
	"io"
)

// ErrFormat is wrapped by every error about a malformed .npy/.npz file.
var ErrFormat = errors.New("model: malformed checkpoint")

// ReadNPZ parses an .npz archive (zip of .npy, stored or deflated) of float32
// arrays into Params keyed by the archive member names without ".npy".
func ReadNPZ(r io.ReaderAt, size int64) (Params, error) { panic("TODO") }

// LoadNPZ reads the .npz file at path.
func LoadNPZ(path string) (Params, error) { panic("TODO") }

// SaveNPZ writes params to path atomically (temp file in the same folder, then rename).
func SaveNPZ(path string, params Params) error { panic("TODO") }

// Infer works out the architecture of a set of weights (units, widths, groups
// default 32 unless the width forbids it, classes), naming it after the
// released size or small config it matches.
func Infer(params Params) (Config, error) { panic("TODO") }

// Load reads a checkpoint, infers its architecture, checks it and returns the model.
func Load(path string) (*Model, error) { panic("TODO") }

// Init returns freshly initialised weights for cfg: He-normal conv kernels,
// GN gamma 1 / beta 0, zero head. Deterministic for a seed.
func Init(cfg Config, seed int64) Params { panic("TODO") }

// ReplaceHead returns a copy of params (trunk tensors shared) whose head has
// the given class count, zero-initialised, for transfer.
func ReplaceHead(params Params, classes int) Params { panic("TODO") }
