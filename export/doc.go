// Package export writes BiT networks (model.Config + model.Params) as ONNX
// models with bitrun's own protobuf writer (package export/onnxpb), ready for
// ONNX Runtime and other importers. No Python, no onnx package.
//
// # Graph
//
// Input "image": float32 [N,3,H,W], pixels normalised as the metadata says
// (BiT: [-1,1]); N, H and W are symbolic dimensions ("N", "H", "W"), so one
// file serves any batch size and resolution. Outputs:
//
//   - "logits"        float32 [N,classes]
//   - "features"      float32 [N,C], the pre-logits (after the head GroupNorm,
//     ReLU and global average pool)
//   - "probabilities" float32 [N,classes], Softmax over axis 1
//
// The graph reproduces model.Model.Forward: root conv 7x7/2 pad 3, an
// explicit zero Pad of 1 then MaxPool 3x3/2 without padding; pre-activation
// bottleneck units whose projection shortcut reads the pre-activated input;
// head GroupNorm, ReLU, GlobalAveragePool, Flatten, Gemm.
//
// The root MaxPool declares its (unused) Indices output. Without it, ONNX
// Runtime's PadFusion folds the zero Pad into the pool's own padding (for
// Pad-13/18/19 before MaxPool-12, i.e. opsets 17 to 20), and pool padding is
// -inf, not zero: border outputs change wherever the root conv output is
// negative (logits off by about 1e-2 on random weights). No optimiser may
// fold padding into a pool whose indices are requested.
//
// Weight Standardization is folded into the kernels at export
// (nn.StandardizeWeight of the OIHW kernel, exactly what the native engine
// runs); with Options.Trainable the raw kernels are the initializers and WS
// is computed in the graph (ReduceMean, Sub, Mul, ReduceMean, Add 1e-10,
// Sqrt, Div per conv), giving the same outputs and a graph another framework
// can fine-tune. No training-mode BatchNormalization is ever emitted.
//
// GroupNorm at opsets 17 to 20 is written as an InstanceNormalization of
// the [N,G,-1] view (Reshape, InstanceNormalization with unit scale, zero
// bias and GN's epsilon, Reshape back to Shape(x), Mul gamma [1,C,1,1], Add
// beta): the same moments and epsilon as GroupNorm, one normalisation
// kernel instead of eight element-wise nodes (ONNX Runtime: R50x1 at 128 px
// about 8% faster than the ReduceMean, Sub, Mul, ReduceMean, Add, Sqrt, Div
// form), and an operator every runtime has. At opset 21 it is one
// GroupNormalization-21 node (per-channel scale and bias, stash_type 1).
// GroupNormalization-18 (per-group affine, deprecated) is never used.
//
// Initializer names follow the checkpoint keys: a folded kernel is
// "<key>/ws" (OIHW), a raw trainable kernel is "<key>" (OIHW), GroupNorm
// parameters and the head keep their keys; small constants are "const/...".
//
// # Metadata
//
// producer_name is "bitrun". metadata_props (ONNX Runtime's custom metadata
// map) holds these keys, whose names, typed form (meta.Meta) and reader
// (meta.Parse) are package export/meta's, so that servers read them without
// importing this package:
//
//	bitrun.arch           architecture, e.g. "R50x1", "tiny"
//	bitrun.classes        number of classes, decimal, e.g. "10"
//	bitrun.labels         class names as a JSON array of strings, e.g. ["cat","dog"];
//	                      absent when exported without labels
//	bitrun.resolution     image side the model expects, decimal pixels, e.g. "128"
//	bitrun.mean           per-channel mean on [0,1] pixels, "r,g,b", e.g. "0.5,0.5,0.5"
//	bitrun.std            per-channel std on [0,1] pixels, "r,g,b", e.g. "0.5,0.5,0.5";
//	                      input = (pixel/255 - mean) / std
//	bitrun.layout         input layout, always "NCHW"
//	bitrun.source_sha256  lowercase hex SHA-256 of the source checkpoint file;
//	                      absent when unknown
//	bitrun.version        bitrun version that wrote the file
//	bitrun.variant        "inference" (WS folded) or "trainable" (WS in the graph)
//
// Readers accept more than is written: mean and std as a JSON array or numbers separated by
// commas or spaces, one value for all three channels; labels also one per
// line.
//
// # Large models
//
// One protobuf message is limited to 2 GB. R152x4 (3.7 GB of float32) is
// written with external data: each tensor of ExternalThreshold bytes or more
// goes to the side file "<model>.onnx.data" (page-aligned offsets, recorded
// as location/offset/length entries, location relative to the model's folder);
// keep the two files together. ExternalAuto decides by size, ExternalAlways
// forces it (useful for testing on small models), ExternalNever refuses models
// over the limit with ErrTooLarge.
//
// Files are written atomically (temporary file in the same folder, then
// rename; the data file is renamed before the model). Kernels are folded one
// at a time while writing, so exporting needs little memory beyond the
// parameters themselves, plus the serialized model for inline exports.
package export
