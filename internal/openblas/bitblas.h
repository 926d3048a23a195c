// Native side of package openblas: dlopen/dlsym wrappers and trampolines that
// call OpenBLAS through function pointers resolved at run time.
#ifndef BITRUN_BITBLAS_H
#define BITRUN_BITBLAS_H

#include <stddef.h>

// bb_open loads the library at path. On success it returns the handle and
// stores the resolved symbols (NULL when absent) in syms, in the order
// cblas_sgemm, openblas_set_num_threads, openblas_get_num_threads,
// openblas_get_config, openblas_get_corename. On failure it returns NULL and
// copies dlerror() into err.
void *bb_open(const char *path, void **syms, char *err, size_t errlen);

// bb_close dlcloses handle; it returns 0 or copies dlerror() into err.
int bb_close(void *handle, char *err, size_t errlen);

// bb_where copies the file name of the object that defines sym into out.
int bb_where(void *sym, char *out, size_t outlen);

// Row-major cblas_sgemm with alpha = 1 through the function pointer fn.
void bb_sgemm(void *fn, int transA, int transB, int m, int n, int k,
              const float *a, int lda, const float *b, int ldb,
              float beta, float *c, int ldc);

void bb_set_threads(void *fn, int n);
int bb_get_threads(void *fn);
const char *bb_get_string(void *fn);

#endif
