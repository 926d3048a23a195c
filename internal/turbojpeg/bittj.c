//go:build cgo

#include <string.h>
#include "bittj.h"

typedef void *(*init_fn)(void);
typedef int (*destroy_fn)(void *);
typedef int (*header_fn)(void *, const unsigned char *, unsigned long, int *, int *, int *, int *);
typedef int (*decompress_fn)(void *, const unsigned char *, unsigned long, unsigned char *, int, int, int, int, int);
typedef char *(*errstr_fn)(void *);
typedef int (*errcode_fn)(void *);

static void copy_str(char *out, size_t outlen, const char *msg, const char *fallback) {
	if (outlen == 0) return;
	if (msg == NULL) msg = fallback;
	strncpy(out, msg, outlen - 1);
	out[outlen - 1] = 0;
}

void *tj_init(void *fn) { return ((init_fn)fn)(); }

int tj_destroy(void *fn, void *h) { return ((destroy_fn)fn)(h); }

int tj_header(void *fn, void *h, const unsigned char *buf, size_t len,
              int *width, int *height, int *subsamp, int *colorspace) {
	return ((header_fn)fn)(h, buf, (unsigned long)len, width, height, subsamp, colorspace);
}

int tj_decompress(void *fn, void *h, const unsigned char *buf, size_t len,
                  unsigned char *dst, int width, int pitch, int height,
                  int pixel_format, int flags) {
	return ((decompress_fn)fn)(h, buf, (unsigned long)len, dst, width, pitch, height, pixel_format, flags);
}

int tj_error(void *str_fn, void *code_fn, void *h, char *out, size_t outlen) {
	const char *msg = str_fn ? ((errstr_fn)str_fn)(h) : NULL;
	copy_str(out, outlen, msg, "unknown TurboJPEG error");
	return code_fn ? ((errcode_fn)code_fn)(h) : -1;
}
