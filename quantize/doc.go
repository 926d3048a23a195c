// Package quantize turns a float32 BiT ONNX export of package export into a
// static post-training int8 model in the QDQ format (QuantizeLinear /
// DequantizeLinear pairs around float operators), written with bitrun's own
// ONNX writer, which ONNX Runtime fuses into integer kernels.
//
// What is quantized: every convolution's kernel (weight standardisation is
// already folded in by the export) as int8 with one symmetric scale per
// output channel; the activation read by each convolution and the one it
// produces, as uint8 with one scale and zero point per tensor, measured on
// calibration images with the model's own preprocessing (min-max, or a
// percentile of the absolute values). ONNX Runtime only fuses DQ → Conv → Q
// into an integer convolution when the output is quantized too, hence the
// output pairs. GroupNorm, the residual additions, pooling and the softmax
// stay float; the head is float unless Options.Head is HeadInt8.
//
// Quantize then measures top-1 of the fp32 and the int8 model on a held-out
// split (the accuracy guard) and refuses to write the output when the drop
// exceeds Options.MaxDrop unless forced. The int8 file keeps the export's
// bitrun.* metadata and adds bitrun.quantized, the method, the calibration
// data, the fp32 file's SHA-256 and the measured accuracy, so predict, eval,
// bench and serve use it unchanged.
//
// Resources: calibration streams the images in batches; memory is the two
// models, one batch of activations (Options.Batch times the model's
// activation size) and a fixed 2048-bin histogram per activation tensor for
// the percentile method. Models with external data (over 2 GB) are refused.
package quantize
