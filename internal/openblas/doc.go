// Package openblas is bitrun's only native boundary to OpenBLAS: it loads
// libopenblas at run time with dlopen and calls cblas_sgemm through a function
// pointer, so binaries built with cgo still start (and fall back to pure Go)
// on machines without the library, and binaries built without cgo compile a
// stub whose Open reports how to enable it.
//
// The library is looked up in this order: the path in $BITRUN_OPENBLAS_LIB,
// then libopenblas.so.0 and libopenblas.so through the dynamic linker's search
// path (which covers Debian's libopenblas0 / libopenblas-dev packages), then a
// few well-known install folders.
//
// OpenBLAS keeps one process-wide thread pool. [Lib.SetThreads] sizes it;
// package nn sets it to 1 and splits work across goroutines itself so that
// Go's and OpenBLAS's threads do not oversubscribe the cores.
//
// Only package nn should use this package; everything else goes through
// nn.Backend.
package openblas
