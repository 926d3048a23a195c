// Package inferencepb is the Go code generated from grpc_predict_v2.proto,
// the KServe v2 (Open Inference Protocol) gRPC API: the messages and the
// inference.GRPCInferenceService client and server stubs. The server side
// is serve.Server.ServeGRPC; any gRPC client of the protocol can call it,
// this package's NewGRPCInferenceServiceClient included.
//
// Regenerate with `make proto` after editing the .proto; never edit the
// generated files.
package inferencepb
