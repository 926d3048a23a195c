// Package client is a Go client for the HTTP API of bitrun serve (package
// serve): raw-image predict, KServe v2 metadata, infer (JSON or binary
// tensors, classification), statistics, health, model versions and the
// model repository API. Its wire types are package api's, shared with the
// server.
//
// It depends only on the standard library, so programs that call a bitrun
// server do not link ONNX Runtime or cgo. Errors from the server come back
// as *Error with the status code, the server's message and the Retry-After
// delay; WithRetries retries 503 answers (queue full, not ready) after that
// delay. Response bodies are capped (MaxResponseBytes) so a misbehaving
// server cannot exhaust the caller's memory.
package client
