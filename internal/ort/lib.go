package ort

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Errors callers branch on.
var (
	// ErrNotFound is wrapped when no ONNX Runtime library file can be found or loaded.
	ErrNotFound = errors.New("ort: onnx runtime library not found")
	// ErrVersion is wrapped when the loaded library is not ONNX Runtime 1.24.x.
	ErrVersion = errors.New("ort: unsupported onnx runtime version")
	// ErrNoCgo is wrapped by every call in a build without cgo.
	ErrNoCgo = errors.New("ort: built without cgo; rebuild with CGO_ENABLED=1 to use ONNX Runtime")
	// ErrClosed is wrapped when a closed session is used.
	ErrClosed = errors.New("ort: session closed")
)

// EnvLibrary is the environment variable naming the library file.
const EnvLibrary = "BITRUN_ORT_LIB"

// WantVersion is the ONNX Runtime version prefix onnxruntime_go v1.27.0 needs.
const WantVersion = "1.24."

// defaultRel is where `make setup` installs the library, relative to the repository root.
var defaultRel = filepath.Join("third_party", "onnxruntime", "libonnxruntime.so")

// systemName is the name handed to the system loader when no file is found.
const systemName = "libonnxruntime.so"

// setupHint tells users how to get the library, in the checkout or for a
// binary installed elsewhere.
const setupHint = "in the checkout run `make setup` (or scripts/install-ort.sh); for a binary installed elsewhere run " +
	"`make install PREFIX=DIR` (DIR/bin/bitrun finds DIR/lib/bitrun/libonnxruntime.so), or put the library in the per-user " +
	"location with `ORT_DEST=${XDG_DATA_HOME:-~/.local/share}/bitrun/onnxruntime scripts/install-ort.sh`; or set " +
	EnvLibrary + " to the path of libonnxruntime.so"

// installedRel is where `make install PREFIX=DIR` puts the library,
// relative to the folder of DIR/bin/bitrun.
var installedRel = filepath.Join("..", "lib", "bitrun", "libonnxruntime.so")

// userDataDir is the per-user data folder: $XDG_DATA_HOME, else
// ~/.local/share ("" when neither is known).
func userDataDir() string {
	if d := os.Getenv("XDG_DATA_HOME"); d != "" && filepath.IsAbs(d) {
		return d
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".local", "share")
	}
	return ""
}

// Resolve picks the library file to load: explicit, else $BITRUN_ORT_LIB, else
// the default install location found by walking up from the executable's
// folder and from the working directory, else ../lib/bitrun/ beside the
// executable's folder (`make install PREFIX=DIR`), else the per-user
// location $XDG_DATA_HOME/bitrun/onnxruntime/ (~/.local/share by default).
// It returns the chosen path (empty when only the system loader is left)
// and every place it looked.
func Resolve(explicit string) (path string, searched []string) {
	if explicit != "" {
		return explicit, []string{explicit}
	}
	if env := os.Getenv(EnvLibrary); env != "" {
		return env, []string{env + " ($" + EnvLibrary + ")"}
	}
	var bases []string
	if exe, err := os.Executable(); err == nil {
		if real, err := filepath.EvalSymlinks(exe); err == nil {
			exe = real
		}
		bases = append(bases, filepath.Dir(exe))
	}
	if wd, err := os.Getwd(); err == nil {
		bases = append(bases, wd)
	}
	seen := map[string]bool{}
	try := func(cand string) bool {
		if seen[cand] {
			return false
		}
		seen[cand] = true
		searched = append(searched, cand)
		st, err := os.Stat(cand)
		return err == nil && !st.IsDir()
	}
	for _, base := range bases {
		dir := base
		for range 8 {
			if cand := filepath.Join(dir, defaultRel); try(cand) {
				return cand, searched
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				break
			}
			dir = parent
		}
	}
	var extra []string
	if exe, err := os.Executable(); err == nil {
		if real, err := filepath.EvalSymlinks(exe); err == nil {
			exe = real
		}
		extra = append(extra, filepath.Clean(filepath.Join(filepath.Dir(exe), installedRel)))
	}
	if d := userDataDir(); d != "" {
		extra = append(extra, filepath.Join(d, "bitrun", "onnxruntime", "libonnxruntime.so"))
	}
	for _, cand := range extra {
		if try(cand) {
			return cand, searched
		}
	}
	return "", append(searched, systemName+" (system loader)")
}

// notFound builds the error for a library that cannot be found.
func notFound(searched []string, cause error) error {
	looked := strings.Join(searched, ", ")
	if len(looked) > 600 {
		looked = looked[:600] + "..."
	}
	if cause != nil {
		return fmt.Errorf("%w (looked in %s): %s: %w", ErrNotFound, looked, setupHint, cause)
	}
	return fmt.Errorf("%w (looked in %s): %s", ErrNotFound, looked, setupHint)
}

// checkFile reports a missing explicit file before anything is loaded.
func checkFile(path string, searched []string) error {
	st, err := os.Stat(path)
	if err != nil {
		return notFound(searched, err)
	}
	if st.IsDir() {
		return notFound(searched, fmt.Errorf("%s is a directory", path))
	}
	return nil
}

// checkVersion verifies the loaded version string.
func checkVersion(v string) error {
	if !strings.HasPrefix(v, WantVersion) {
		return fmt.Errorf("%w: loaded %q, need %sx (onnxruntime_go v1.27.0): %s", ErrVersion, v, WantVersion, setupHint)
	}
	return nil
}

// IOInfo describes one model input or output.
type IOInfo struct {
	Name     string
	Shape    []int64 // -1 (or any negative) for dynamic dims
	Float    bool    // element type is float32
	ElemType string  // element type name, e.g. "float"
	IsTensor bool
}

// SessionOptions configures a session.
type SessionOptions struct {
	IntraThreads int  // 0 = ORT default
	InterThreads int  // 0 = ORT default
	CUDA         bool // append the CUDA execution provider
	CUDADevice   int
	// Config holds ONNX Runtime session configuration entries, e.g.
	// "session.intra_op.allow_spinning": "0".
	Config map[string]string
	// OptimizedModelPath, when set, makes ONNX Runtime write the graph it
	// runs after its optimisations (fusions, layout changes) to this file.
	OptimizedModelPath string
	// ProfilePrefix, when set, turns on ONNX Runtime's profiler: a JSON
	// trace of every node run is written to PREFIX_<date>.json when the
	// session closes.
	ProfilePrefix string
}

// Tensor is one float32 output.
type Tensor struct {
	Name  string
	Shape []int64
	Data  []float32
}
