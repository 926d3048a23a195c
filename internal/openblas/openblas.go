package openblas

import (
	"errors"
	"fmt"
	"os"

	"github.com/bitrun/bitrun/internal/dynlib"
)

// ErrUnavailable is wrapped by every error saying the library could not be
// used: built without cgo, library not found, or a required symbol missing.
var ErrUnavailable = errors.New("openblas: unavailable")

// EnvLib names the environment variable holding an explicit library path.
const EnvLib = "BITRUN_OPENBLAS_LIB"

// candidates lists the library names and paths Open tries.
func candidates() []string {
	return dynlib.Candidates(EnvLib,
		"libopenblas.so.0",
		"libopenblas.so",
		"/usr/lib/x86_64-linux-gnu/libopenblas.so.0",
		"/usr/lib/aarch64-linux-gnu/libopenblas.so.0",
		"/usr/lib64/libopenblas.so.0",
		"/usr/local/lib/libopenblas.so.0",
		"/usr/local/lib/libopenblas.so",
		"/opt/OpenBLAS/lib/libopenblas.so",
		"/opt/homebrew/opt/openblas/lib/libopenblas.dylib",
		"/usr/local/opt/openblas/lib/libopenblas.dylib",
	)
}

// Candidates returns the paths Open tries, in order. When $BITRUN_OPENBLAS_LIB
// is set it is the only candidate, so a wrong explicit path is an error rather
// than a silent fallback.
func Candidates() []string { return candidates() }

// Lib is a loaded OpenBLAS. Its methods are safe for concurrent use; Close
// waits for running products to finish and is idempotent.
type Lib struct {
	impl
}

// envThreads is OpenBLAS's own variable for the size of its thread pool.
const envThreads = "OPENBLAS_NUM_THREADS"

// Open loads OpenBLAS from the first candidate that works (see Candidates).
// The error wraps ErrUnavailable and lists what was tried.
func Open() (*Lib, error) {
	if !cgoEnabled {
		return OpenPath(candidates()[0])
	}
	return dynlib.First(candidates(), ErrUnavailable,
		"install OpenBLAS, e.g. Debian's libopenblas0, or set "+EnvLib+" to its path", OpenPath)
}

// OpenPath loads OpenBLAS from path (a file path or a name for the dynamic
// linker's search path).
func OpenPath(path string) (*Lib, error) {
	if path == "" {
		return nil, fmt.Errorf("%w: empty library path", ErrUnavailable)
	}
	// OpenBLAS starts its thread pool when it loads, sized by
	// $OPENBLAS_NUM_THREADS (default: every core), and those threads
	// busy-wait between products: with the pool at one thread by
	// SetThreads they still took half a core from the Go workers that split
	// the products (measured: the pure-Go GEMM at 170 GFLOP/s on one core
	// beside them, 188 without). Starting with one thread leaves the pool
	// to SetThreads, which grows it when asked.
	if _, set := os.LookupEnv(envThreads); !set && cgoEnabled {
		os.Setenv(envThreads, "1")
		defer os.Unsetenv(envThreads)
	}
	l := &Lib{}
	if err := l.open(path); err != nil {
		return nil, err
	}
	return l, nil
}

// Path is the file the library was loaded from (as the dynamic linker
// reports it), or the name that was asked for when that is unknown.
func (l *Lib) Path() string { return l.path }

// Close unloads the library. It is safe to call more than once; products
// must not be started after Close (that panics).
func (l *Lib) Close() error { return l.close() }

// Sgemm computes C = op(A)·op(B) + beta·C on row-major float32 matrices
// (op(A) m×k, op(B) k×n, C m×n) with cblas_sgemm. It panics on arguments
// that would make the library read or write outside the slices, or after
// Close: both are programmer errors.
func (l *Lib) Sgemm(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if err := CheckSgemm(transA, transB, m, n, k, len(a), lda, len(b), ldb, len(c), ldc); err != nil {
		panic(err)
	}
	if m == 0 || n == 0 {
		return
	}
	l.sgemm(transA, transB, m, n, k, a, lda, b, ldb, beta, c, ldc)
}

// CheckSgemm reports whether the arguments of a row-major Sgemm stay inside
// slices of the given lengths and fit the library's 32-bit integers.
func CheckSgemm(transA, transB bool, m, n, k, lenA, lda, lenB, ldb, lenC, ldc int) error {
	const maxInt32 = 1<<31 - 1
	if m < 0 || n < 0 || k < 0 {
		return fmt.Errorf("openblas: sgemm: negative size m=%d n=%d k=%d", m, n, k)
	}
	for _, v := range []int{m, n, k, lda, ldb, ldc} {
		if v > maxInt32 {
			return fmt.Errorf("openblas: sgemm: size %d exceeds 32-bit BLAS integers", v)
		}
	}
	check := func(name string, rows, cols, ld, length int) error {
		if ld < max(1, cols) {
			return fmt.Errorf("openblas: sgemm: ld%s=%d < %d columns", name, ld, cols)
		}
		if rows > 0 && cols > 0 && length < (rows-1)*ld+cols {
			return fmt.Errorf("openblas: sgemm: %s has %d elements, needs %d (%dx%d, ld %d)", name, length, (rows-1)*ld+cols, rows, cols, ld)
		}
		return nil
	}
	ar, ac := m, k
	if transA {
		ar, ac = k, m
	}
	br, bc := k, n
	if transB {
		br, bc = n, k
	}
	return errors.Join(check("a", ar, ac, lda, lenA), check("b", br, bc, ldb, lenB), check("c", m, n, ldc, lenC))
}
