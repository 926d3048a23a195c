// Package ort is bitrun's one native boundary: it loads the ONNX Runtime
// shared library (libonnxruntime.so, version 1.24.x) at run time through
// github.com/yalue/onnxruntime_go and exposes the few operations the runtime
// package needs: load the library, open a session, describe its inputs,
// outputs and metadata, run it on one float32 tensor.
//
// All cgo-dependent code sits behind the cgo build tag. A build with
// CGO_ENABLED=0 compiles the same API, every call of which returns an error
// wrapping ErrNoCgo that says how to enable ONNX Runtime.
//
// The library is process-global: the first successful Load fixes the library
// used by the whole process. Library lookup order: an explicit path (option or
// configuration), $BITRUN_ORT_LIB, third_party/onnxruntime/libonnxruntime.so
// found by walking up from the executable's folder and from the working
// directory, then the system loader (libonnxruntime.so on the loader path).
//
// Security and resources: a session parses the model file with ONNX Runtime's
// own protobuf parser; an untrusted model can cost as much memory and CPU as
// its graph asks for. Only open models you trust.
package ort
