package nn

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"

	"github.com/bitrun/bitrun/internal/openblas"
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// GEMM computes C = op(A)·op(B) + beta·C on row-major float32 matrices, where
// op(A) is m×k, op(B) is k×n and C is m×n. transA/transB select the transpose.
// Implementations must be safe for concurrent use. The backends of this
// package spread one product over all cores (GOMAXPROCS goroutines) and
// panic on arguments that reach outside the slices (a programmer error).
type GEMM interface {
	Name() string
	Sgemm(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int)
}

// serialGEMM is implemented by the backends of this package: SgemmSerial
// runs one product on the calling goroutine only, so that kernels which
// already spread work across goroutines do not oversubscribe the cores.
type serialGEMM interface {
	GEMM
	sgemmSerial(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int)
}

// Backend keys accepted by SelectBackend and $BITRUN_GEMM.
const (
	BackendAuto     = "auto"     // pure Go on AVX-512 CPUs, else OpenBLAS when it loads, else pure Go
	BackendGo       = "go"       // PureGo
	BackendOpenBLAS = "openblas" // OpenBLAS loaded at run time
	BackendGonum    = "gonum"    // gonum's pure-Go BLAS (reference, slower)
)

// EnvGEMM names the environment variable read when the backend is first used.
const EnvGEMM = "BITRUN_GEMM"

// ErrBackend is wrapped by errors about choosing a GEMM backend.
var ErrBackend = errors.New("nn: gemm backend unavailable")

// PureGo is the always-available GEMM: packed, blocked, with an AVX2+FMA
// assembly micro-kernel on amd64 CPUs that have it and plain Go elsewhere.
type PureGo struct{}

// Name implements GEMM: "go (AVX2+FMA)" or "go (generic)".
func (PureGo) Name() string { return BackendGo + " (" + kernelName() + ")" }

// Sgemm implements GEMM.
func (g PureGo) Sgemm(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	mustCheck(transA, transB, m, n, k, a, lda, b, ldb, c, ldc)
	parallelSgemm(sgemmGo, transA, transB, m, n, k, a, lda, b, ldb, beta, c, ldc)
}

func (PureGo) sgemmSerial(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	mustCheck(transA, transB, m, n, k, a, lda, b, ldb, c, ldc)
	sgemmGo(transA, transB, m, n, k, a, lda, b, ldb, beta, c, ldc)
}

// Gonum is the GEMM of gonum's pure-Go BLAS, kept as a reference and
// baseline; PureGo is several times faster.
type Gonum struct{}

// Name implements GEMM.
func (Gonum) Name() string { return BackendGonum }

// Sgemm implements GEMM.
func (Gonum) Sgemm(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	mustCheck(transA, transB, m, n, k, a, lda, b, ldb, c, ldc)
	sgemmGonum(transA, transB, m, n, k, a, lda, b, ldb, beta, c, ldc)
}

func sgemmGonum(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	if k == 0 {
		scaleC(m, n, beta, c, ldc)
		return
	}
	ta, tb := blas.NoTrans, blas.NoTrans
	if transA {
		ta = blas.Trans
	}
	if transB {
		tb = blas.Trans
	}
	gonum.Implementation{}.Sgemm(ta, tb, m, n, k, 1, a, lda, b, ldb, beta, c, ldc)
}

// OpenBLAS is the GEMM backed by a run-time loaded libopenblas. Its thread
// pool is set to one thread: products are split across goroutines by this
// package instead, which measured faster on small machines and keeps Go's
// scheduler in charge of the cores.
type OpenBLAS struct {
	lib *openblas.Lib
}

// OpenOpenBLAS loads OpenBLAS (see package internal/openblas for the search
// order and $BITRUN_OPENBLAS_LIB). The error wraps ErrBackend.
func OpenOpenBLAS() (*OpenBLAS, error) {
	lib, err := openblas.Open()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBackend, err)
	}
	lib.SetThreads(1)
	return &OpenBLAS{lib: lib}, nil
}

// Name implements GEMM: "openblas (PATH)".
func (o *OpenBLAS) Name() string { return BackendOpenBLAS + " (" + o.lib.Path() + ")" }

// Config describes the OpenBLAS build (version, target core).
func (o *OpenBLAS) Config() string { return o.lib.Config() }

// Sgemm implements GEMM.
func (o *OpenBLAS) Sgemm(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	mustCheck(transA, transB, m, n, k, a, lda, b, ldb, c, ldc)
	parallelSgemm(o.lib.Sgemm, transA, transB, m, n, k, a, lda, b, ldb, beta, c, ldc)
}

func (o *OpenBLAS) sgemmSerial(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	o.lib.Sgemm(transA, transB, m, n, k, a, lda, b, ldb, beta, c, ldc)
}

// Close unloads the library; it is idempotent. The shared backend returned
// by Backend is never closed.
func (o *OpenBLAS) Close() error { return o.lib.Close() }

func mustCheck(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
	if err := openblas.CheckSgemm(transA, transB, m, n, k, len(a), lda, len(b), ldb, len(c), ldc); err != nil {
		panic("nn: " + strings.TrimPrefix(err.Error(), "openblas: "))
	}
}

type sgemmFunc func(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int)

// parallelMinFlops is the smallest product (m·n·k) worth splitting.
const parallelMinFlops = 1 << 18

// splitProduct runs part(i0, mb, j0, nb) over blocks of an m×n product
// that together cover it: one to three column blocks (or row blocks,
// whichever duplicates less packing) per GOMAXPROCS, on the calling goroutine plus the helpers it can
// get (see ParallelFor). The split depends only on the shape and GOMAXPROCS,
// never on how busy the cores are, so a product gives the same bits whether
// it runs nested, concurrently or alone.
func splitProduct(m, n, k int, part func(i0, mb, j0, nb int)) {
	parts := runtime.GOMAXPROCS(0)
	// Splitting columns makes every part pack all of A (m·k); splitting rows
	// makes every part pack all of B (k·n).
	byCols := n >= 2*nr && (m <= n || m < 2*mr)
	if parts <= 1 || m == 0 || n == 0 || m*n*k < parallelMinFlops || (!byCols && m < 2*mr) {
		part(0, m, 0, n)
		return
	}
	unit, total := mr, m
	if byCols {
		unit, total = nr, n
	}
	// A few blocks per core (each at least 4 micro-tiles wide) so that a
	// core that gets descheduled on a busy machine does not hold the others
	// up: whoever is running takes the next block.
	parts = min(3*parts, max(parts, total/(4*unit)))
	chunk := ((total+parts-1)/parts + unit - 1) / unit * unit
	parts = (total + chunk - 1) / chunk
	ParallelFor(parts, func(i int) {
		lo := i * chunk
		size := min(chunk, total-lo)
		if byCols {
			part(0, m, lo, size)
		} else {
			part(lo, size, 0, n)
		}
	})
}

// parallelSgemm runs f over the blocks of splitProduct.
func parallelSgemm(f sgemmFunc, transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	splitProduct(m, n, k, func(i0, mb, j0, nb int) {
		as, bs := a, b
		if i0 > 0 {
			if transA {
				as = a[i0:]
			} else {
				as = a[i0*lda:]
			}
		}
		if j0 > 0 {
			if transB {
				bs = b[j0*ldb:]
			} else {
				bs = b[j0:]
			}
		}
		f(transA, transB, mb, nb, k, as, lda, bs, ldb, beta, c[i0*ldc+j0:], ldc)
	})
}

var (
	gemmMu      sync.RWMutex
	gemmBackend GEMM
	gemmErr     error
	gemmOnce    sync.Once

	openblasOnce sync.Once
	openblasG    *OpenBLAS
	openblasErr  error
)

// sharedOpenBLAS loads OpenBLAS once per process.
func sharedOpenBLAS() (*OpenBLAS, error) {
	openblasOnce.Do(func() { openblasG, openblasErr = OpenOpenBLAS() })
	return openblasG, openblasErr
}

// Backends lists every GEMM usable in this process, preferred first: PureGo,
// OpenBLAS when its library loads, then Gonum. Tests and benchmarks run
// against each.
func Backends() []GEMM {
	gs := []GEMM{PureGo{}}
	if o, err := sharedOpenBLAS(); err == nil {
		gs = append(gs, o)
	}
	return append(gs, Gonum{})
}

// BackendNamed returns the backend for a key: "auto", "go", "openblas" or
// "gonum" ("" means auto). Auto is PureGo on CPUs with AVX-512 (its 512-bit
// kernel and its convolutions, which pack panels straight from the images,
// beat OpenBLAS there), else OpenBLAS when it loads, else PureGo.
func BackendNamed(key string) (GEMM, error) {
	switch strings.ToLower(strings.TrimSpace(key)) {
	case "", BackendAuto:
		if hasWideKernel {
			return PureGo{}, nil
		}
		if o, err := sharedOpenBLAS(); err == nil {
			return o, nil
		}
		return PureGo{}, nil
	case BackendGo, "purego", "pure-go":
		return PureGo{}, nil
	case BackendOpenBLAS:
		o, err := sharedOpenBLAS()
		if err != nil {
			return nil, err
		}
		return o, nil
	case BackendGonum:
		return Gonum{}, nil
	}
	return nil, fmt.Errorf("%w: unknown gemm backend %q (want %s, %s, %s or %s)", ErrBackend, key, BackendAuto, BackendGo, BackendOpenBLAS, BackendGonum)
}

// initBackend applies $BITRUN_GEMM the first time a backend is needed. When
// the requested backend cannot be used, PureGo runs instead and
// BackendError reports why.
func initBackend() {
	gemmOnce.Do(func() {
		g, err := BackendNamed(os.Getenv(EnvGEMM))
		if err != nil {
			g, err = PureGo{}, fmt.Errorf("%w (from %s=%s; using %s instead)", err, EnvGEMM, os.Getenv(EnvGEMM), PureGo{}.Name())
		}
		gemmMu.Lock()
		if gemmBackend == nil {
			gemmBackend, gemmErr = g, err
		}
		gemmMu.Unlock()
	})
}

// Backend returns the GEMM in use: the one chosen by SetBackend or
// SelectBackend, else the one $BITRUN_GEMM asks for (default auto).
func Backend() GEMM {
	initBackend()
	gemmMu.RLock()
	defer gemmMu.RUnlock()
	return gemmBackend
}

// BackendError is the error from honouring $BITRUN_GEMM (nil when the
// requested backend is in use). Commands call it at start-up so that a
// forced but unavailable backend fails loudly rather than silently running
// the fallback.
func BackendError() error {
	initBackend()
	gemmMu.RLock()
	defer gemmMu.RUnlock()
	return gemmErr
}

// SetBackend selects the GEMM used by every kernel. Call it at start-up.
func SetBackend(g GEMM) {
	initBackend()
	gemmMu.Lock()
	defer gemmMu.Unlock()
	gemmBackend, gemmErr = g, nil
}

// SelectBackend sets the backend named by key (see BackendNamed) and returns it.
func SelectBackend(key string) (GEMM, error) {
	g, err := BackendNamed(key)
	if err != nil {
		return nil, err
	}
	SetBackend(g)
	return g, nil
}

// sgemmOne runs one product on the calling goroutine with g when g supports
// it (the backends of this package do), else with g's own Sgemm.
func sgemmOne(g GEMM, transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if s, ok := g.(serialGEMM); ok {
		s.sgemmSerial(transA, transB, m, n, k, a, lda, b, ldb, beta, c, ldc)
		return
	}
	g.Sgemm(transA, transB, m, n, k, a, lda, b, ldb, beta, c, ldc)
}

// KernelName names the micro-kernel of the pure-Go GEMM on this CPU
// ("AVX-512", "AVX2+FMA" or "generic"), which the training convolutions use
// whatever the backend.
func KernelName() string { return kernelName() }
