// Package onnxtest hand-encodes small ONNX models (protobuf wire format via
// protowire, no generated code) for tests of the runtime, eval and serving
// packages: a model can be written without the exporter, and the outputs of
// Classifier computed in Go to compare with ONNX Runtime's. It is for tests
// only; the graphs it writes are not checked beyond what ONNX Runtime does.
// Require is the shared gate of tests that need ONNX Runtime: skip without
// it, fail instead when BITRUN_REQUIRE_ORT=1.
package onnxtest
