// Package api defines every JSON body that bitrun's HTTP server (package
// serve) and its Go client (package client) exchange, once: the raw-image
// predict answer, the KServe v2 / Open Inference Protocol bodies (server and
// model metadata, infer requests and answers, statistics, the model
// repository API) and the error body. It also holds the one encoder and
// decoder of the v2 binary tensor data extension, which both sides use.
//
// It depends only on the standard library, so a program that links package
// client links neither Prometheus nor ONNX Runtime.
//
// Tensor data travels as JSON (Tensor.Data) or, with the binary tensor data
// extension, as raw little-endian bytes after the JSON header
// (Tensor.Raw, with Parameters["binary_data_size"]). [Tensor.Float32s],
// [Tensor.Uint8s] and [Tensor.Strings] read either form.
package api
