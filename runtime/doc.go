// Package runtime runs ONNX image classifiers (any model with one float32
// NCHW input) through ONNX Runtime.
//
// A Predictor owns one ONNX Runtime session (or Options.Sessions of them),
// opened with Open from a model file and Options (library path, execution
// provider cpu/cuda/auto, thread counts). Run takes a batch of any size (and any spatial size the model
// allows) and returns every output by name; it is safe for concurrent use.
// Inputs are checked against the model's fixed dims first; mismatches wrap
// ErrBadInput. A missing or wrong ONNX Runtime library wraps ErrUnavailable
// with a hint to run `make setup` or set BITRUN_ORT_LIB.
//
// The native library is loaded once per process by internal/ort; in a build
// without cgo every Open fails with ErrUnavailable.
//
// Resources: a model file is parsed by ONNX Runtime; an untrusted model can
// use as much memory and CPU as its graph asks for. Each Run allocates its
// outputs; the input slice is only read during the call.
package runtime
