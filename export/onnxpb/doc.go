// Package onnxpb is bitrun's own encoder and decoder for the subset of
// onnx.proto that BiT graphs need: ModelProto, GraphProto, NodeProto,
// AttributeProto, TensorProto (with external data fields), ValueInfoProto
// with tensor types and symbolic dimensions, OperatorSetIdProto and
// StringStringEntryProto (metadata_props). It is written directly on the
// protobuf wire format (google.golang.org/protobuf/encoding/protowire) from
// the field numbers of onnx.proto; no generated code.
//
// Unmarshal reads a whole model (unknown fields are skipped); ReadHeader
// reads only the top-level fields (metadata, opsets, producer) of a model of
// any size, skipping the graph.
//
// Security: both readers accept untrusted input. They never panic, bound
// nesting depth, and check every length against the bytes available;
// Unmarshal's memory is a small multiple of the input size and ReadHeader
// keeps at most MaxHeaderBytes. Neither loads external data files.
package onnxpb
