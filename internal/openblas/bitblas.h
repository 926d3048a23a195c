// Native side of package openblas: trampolines that call OpenBLAS through
// function pointers resolved at run time (by internal/dynlib).
#ifndef BITRUN_BITBLAS_H
#define BITRUN_BITBLAS_H

#include <stddef.h>

// Row-major cblas_sgemm with alpha = 1 through the function pointer fn.
void bb_sgemm(void *fn, int transA, int transB, int m, int n, int k,
              const float *a, int lda, const float *b, int ldb,
              float beta, float *c, int ldc);

void bb_set_threads(void *fn, int n);
int bb_get_threads(void *fn);
const char *bb_get_string(void *fn);

#endif
