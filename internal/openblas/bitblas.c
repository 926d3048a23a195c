//go:build cgo

#include "bitblas.h"

// CBLAS enum values (fixed by the CBLAS standard); defined here so the build
// does not need cblas.h.
enum { bbRowMajor = 101, bbNoTrans = 111, bbTrans = 112 };

typedef void (*sgemm_fn)(int order, int ta, int tb, int m, int n, int k,
                         float alpha, const float *a, int lda,
                         const float *b, int ldb, float beta, float *c, int ldc);
typedef void (*set_threads_fn)(int);
typedef int (*get_threads_fn)(void);
typedef char *(*get_string_fn)(void);

void bb_sgemm(void *fn, int transA, int transB, int m, int n, int k,
              const float *a, int lda, const float *b, int ldb,
              float beta, float *c, int ldc) {
	((sgemm_fn)fn)(bbRowMajor, transA ? bbTrans : bbNoTrans, transB ? bbTrans : bbNoTrans,
	               m, n, k, 1.0f, a, lda, b, ldb, beta, c, ldc);
}

void bb_set_threads(void *fn, int n) { ((set_threads_fn)fn)(n); }

int bb_get_threads(void *fn) { return ((get_threads_fn)fn)(); }

const char *bb_get_string(void *fn) { return ((get_string_fn)fn)(); }
