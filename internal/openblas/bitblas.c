//go:build cgo

#define _GNU_SOURCE
#include <dlfcn.h>
#include <string.h>
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

static void copy_err(char *err, size_t errlen, const char *msg) {
	if (errlen == 0) return;
	if (msg == NULL) msg = "unknown dlopen error";
	strncpy(err, msg, errlen - 1);
	err[errlen - 1] = 0;
}

void *bb_open(const char *path, void **syms, char *err, size_t errlen) {
	static const char *names[] = {
		"cblas_sgemm", "openblas_set_num_threads", "openblas_get_num_threads",
		"openblas_get_config", "openblas_get_corename",
	};
	dlerror();
	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (h == NULL) {
		copy_err(err, errlen, dlerror());
		return NULL;
	}
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		syms[i] = dlsym(h, names[i]);
	}
	return h;
}

int bb_close(void *handle, char *err, size_t errlen) {
	dlerror();
	if (dlclose(handle) != 0) {
		copy_err(err, errlen, dlerror());
		return -1;
	}
	return 0;
}

int bb_where(void *sym, char *out, size_t outlen) {
	Dl_info info;
	if (dladdr(sym, &info) == 0 || info.dli_fname == NULL) return -1;
	copy_err(out, outlen, info.dli_fname);
	return 0;
}

void bb_sgemm(void *fn, int transA, int transB, int m, int n, int k,
              const float *a, int lda, const float *b, int ldb,
              float beta, float *c, int ldc) {
	((sgemm_fn)fn)(bbRowMajor, transA ? bbTrans : bbNoTrans, transB ? bbTrans : bbNoTrans,
	               m, n, k, 1.0f, a, lda, b, ldb, beta, c, ldc);
}

void bb_set_threads(void *fn, int n) { ((set_threads_fn)fn)(n); }

int bb_get_threads(void *fn) { return ((get_threads_fn)fn)(); }

const char *bb_get_string(void *fn) { return ((get_string_fn)fn)(); }
