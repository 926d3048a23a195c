//go:build !cgo

package openblas

import "fmt"

const cgoEnabled = false

type impl struct{ path string }

func (l *Lib) open(path string) error {
	return fmt.Errorf("%w: bitrun was built without cgo; rebuild with CGO_ENABLED=1 and a C compiler, and install OpenBLAS (Debian: apt-get install libopenblas0) to use it (tried %s)", ErrUnavailable, path)
}

func (l *Lib) close() error { return nil }

func (l *Lib) sgemm(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	panic("openblas: Sgemm without cgo")
}

// SetThreads sets the size of OpenBLAS's thread pool; without cgo there is no
// library and it reports false.
func (l *Lib) SetThreads(n int) bool { return false }

// Threads is the number of threads OpenBLAS uses per product; 0 without cgo.
func (l *Lib) Threads() int { return 0 }

// Config is OpenBLAS's build description; "" without cgo.
func (l *Lib) Config() string { return "" }
