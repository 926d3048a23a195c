package model

// Checkpoint I/O lives in npy.go (arrays), npz.go (archives), infer.go
// (architecture from weights, Load) and init.go (fresh weights).

import "errors"

// ErrFormat is wrapped by every error about a malformed .npy/.npz file
// (including arrays of a dtype other than little-endian float32).
var ErrFormat = errors.New("model: malformed checkpoint")

// ErrNonFinite is wrapped (inside a *FormatError naming the member) when a
// checkpoint array holds NaN or ±Inf: ReadNPZ refuses such weights, so no
// command trains, exports or serves them.
var ErrNonFinite = errors.New("model: non-finite value")

// ErrArch is wrapped by errors from Infer when a set of weights does not
// describe a BiT network (for example when the root kernel is missing).
var ErrArch = errors.New("model: cannot infer architecture")
