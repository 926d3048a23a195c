// Native side of package turbojpeg: trampolines that call libturbojpeg through
// function pointers resolved at run time (by internal/dynlib), so the build
// needs neither turbojpeg.h nor the library.
#ifndef BITRUN_BITTJ_H
#define BITRUN_BITTJ_H

#include <stddef.h>

// Trampolines over the TurboJPEG 2.x API (fn is the resolved symbol).
void *tj_init(void *fn);
int tj_destroy(void *fn, void *h);
int tj_header(void *fn, void *h, const unsigned char *buf, size_t len,
              int *width, int *height, int *subsamp, int *colorspace);
int tj_decompress(void *fn, void *h, const unsigned char *buf, size_t len,
                  unsigned char *dst, int width, int pitch, int height,
                  int pixel_format, int flags);
// tj_error copies the handle's last error message into out and returns the
// error code (0 warning, 1 fatal; -1 when the library lacks tjGetErrorCode).
int tj_error(void *str_fn, void *code_fn, void *h, char *out, size_t outlen);

#endif
