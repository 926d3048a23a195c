// Package turbojpeg is bitrun's native boundary to libjpeg-turbo's TurboJPEG
// API: it loads libturbojpeg at run time with dlopen and calls it through
// function pointers, so binaries built with cgo still start (and decode JPEG
// with Go's image/jpeg) on machines without the library, and binaries built
// without cgo compile a stub whose Open reports how to enable it.
//
// The library is looked up in this order: the path in $BITRUN_TURBOJPEG_LIB,
// then libturbojpeg.so.0 and libturbojpeg.so through the dynamic linker's
// search path (Debian's libturbojpeg0 package), then a few well-known install
// folders. TurboJPEG 2.0 or newer is needed (tjDecompressHeader3,
// tjDecompress2, tjGetErrorStr2).
//
// Decoding is about four times faster than image/jpeg (a 224×224 baseline
// JPEG: 0.17 ms against 0.74 ms on one core here), which is most of the
// per-request CPU a server spends before inference on small models.
//
// Only package data should use this package; everything else decodes through
// data.DecodeBytes.
package turbojpeg
