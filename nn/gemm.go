package nn

import (
	"sync"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// GEMM computes C = op(A)·op(B) + beta·C on row-major float32 matrices, where
// op(A) is m×k, op(B) is k×n and C is m×n. transA/transB select the transpose.
// Implementations must be safe for concurrent use.
type GEMM interface {
	Name() string
	Sgemm(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int)
}

// PureGo is the always-available GEMM backed by gonum's pure-Go BLAS.
type PureGo struct{}

// Name implements GEMM.
func (PureGo) Name() string { return "gonum (pure Go)" }

// Sgemm implements GEMM.
func (PureGo) Sgemm(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if m == 0 || n == 0 {
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

var (
	gemmMu      sync.RWMutex
	gemmBackend GEMM = PureGo{}
)

// Backend returns the GEMM in use.
func Backend() GEMM {
	gemmMu.RLock()
	defer gemmMu.RUnlock()
	return gemmBackend
}

// SetBackend selects the GEMM used by every kernel. Call it at start-up.
func SetBackend(g GEMM) {
	gemmMu.Lock()
	defer gemmMu.Unlock()
	gemmBackend = g
}
