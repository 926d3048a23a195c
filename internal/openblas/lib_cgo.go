//go:build cgo

package openblas

/*
#include "bitblas.h"
*/
import "C"

import (
	"fmt"
	"unsafe"

	"github.com/bitrun/bitrun/internal/dynlib"
)

// Symbol slots filled by bb_open.
const (
	symSgemm = iota
	symSetThreads
	symGetThreads
	symGetConfig
	symGetCorename
)

const cgoEnabled = true

// symNames are the symbols resolved at open, in the sym* order.
var symNames = []string{"cblas_sgemm", "openblas_set_num_threads", "openblas_get_num_threads", "openblas_get_config", "openblas_get_corename"}

type impl struct {
	lib  dynlib.Guard // read-held by products, write-held by close
	path string
}

func (l *Lib) open(path string) error {
	// Only cblas_sgemm is required; the thread and config calls are used
	// when present.
	p, err := l.lib.Load(path, symNames, 1)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	l.path = p
	return nil
}

func (l *Lib) close() error {
	if err := l.lib.Close(nil); err != nil {
		return fmt.Errorf("openblas: dlclose %s: %v", l.path, err)
	}
	return nil
}

func ptr(s []float32) *C.float {
	if len(s) == 0 {
		return nil
	}
	return (*C.float)(unsafe.Pointer(&s[0]))
}

func b2i(b bool) C.int {
	if b {
		return 1
	}
	return 0
}

func (l *Lib) sgemm(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	l.lib.RLock()
	defer l.lib.RUnlock()
	fn := l.lib.Sym(symSgemm)
	if fn == nil {
		panic("openblas: Sgemm on a closed library")
	}
	C.bb_sgemm(fn, b2i(transA), b2i(transB), C.int(m), C.int(n), C.int(k),
		ptr(a), C.int(lda), ptr(b), C.int(ldb), C.float(beta), ptr(c), C.int(ldc))
}

// SetThreads sets the size of OpenBLAS's (process-wide) thread pool used by
// each product. It reports false when the library has no
// openblas_set_num_threads (or is closed).
func (l *Lib) SetThreads(n int) bool {
	l.lib.RLock()
	defer l.lib.RUnlock()
	fn := l.lib.Sym(symSetThreads)
	if fn == nil || n < 1 {
		return false
	}
	C.bb_set_threads(fn, C.int(n))
	return true
}

// Threads is the number of threads OpenBLAS uses per product, or 0 when
// unknown.
func (l *Lib) Threads() int {
	l.lib.RLock()
	defer l.lib.RUnlock()
	fn := l.lib.Sym(symGetThreads)
	if fn == nil {
		return 0
	}
	return int(C.bb_get_threads(fn))
}

// Config is OpenBLAS's build description (openblas_get_config, for example
// "OpenBLAS 0.3.21 DYNAMIC_ARCH NO_AFFINITY Haswell MAX_THREADS=64") plus
// the core it selected, or "" when the library does not say.
func (l *Lib) Config() string {
	l.lib.RLock()
	defer l.lib.RUnlock()
	str := func(i int) string {
		if l.lib.Sym(i) == nil {
			return ""
		}
		p := C.bb_get_string(l.lib.Sym(i))
		if p == nil {
			return ""
		}
		return C.GoString(p)
	}
	cfg, core := str(symGetConfig), str(symGetCorename)
	switch {
	case cfg == "":
		return core
	case core == "":
		return cfg
	}
	return cfg + " (core " + core + ")"
}
