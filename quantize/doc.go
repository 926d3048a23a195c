// Package quantize turns a float32 BiT ONNX export of package export into a
// static post-training int8 model in the QDQ format (QuantizeLinear /
// DequantizeLinear pairs around float operators), written with bitrun's own
// ONNX writer, which ONNX Runtime fuses into integer kernels.
//
// What is quantized: every convolution's kernel (weight standardisation is
// already folded in by the export) as int8 with one symmetric scale per
// output channel; the activation read by each convolution and the one it
// produces, as uint8 with one scale and zero point per tensor, measured on
// calibration images with the model's own preprocessing (min-max; a
// percentile of the absolute values; or the entropy method, the clip whose
// quantized histogram of absolute values has the least Kullback-Leibler
// divergence from the measured one, as in TensorRT's and ONNX Runtime's
// entropy calibrators). ONNX Runtime only fuses DQ → Conv → Q
// into an integer convolution when the output is quantized too, hence the
// output pairs. GroupNorm, the residual additions, pooling and the softmax
// stay float; the head is float unless Options.Head is HeadInt8.
//
// Quantize then runs the fp32 and the int8 model on a held-out split (the
// accuracy guard) and refuses to write the output when the int8 model falls
// more than Options.MaxDrop points behind unless forced. What it measures is
// Options.Guard: with GuardLabels the top-1 of both models against the
// labels, the limit applying to the drop; with GuardAgreement, for models
// whose classes are not the dataset's (the zoo's 1000- and 21843-class
// upstream checkpoints on, say, Fashion-MNIST), how often the int8 model's
// top-1 is the fp32 model's (and the fp32 top-1 is among the int8 top 5),
// the limit applying to the disagreement, 100 × (1 - agreement) points.
// GuardAuto, the default, takes labels when the evaluation set has the
// model's class count and agreement otherwise. The int8 file keeps the export's
// bitrun.* metadata and adds bitrun.quantized, the method, the calibration
// data, the fp32 file's SHA-256 and the measured accuracy, so predict, eval,
// bench and serve use it unchanged.
//
// Resources: calibration streams the images in batches; memory is the two
// models, one batch of activations (Options.Batch times the model's
// activation size) and a fixed 2048-bin histogram per activation tensor for
// the percentile and entropy methods; the entropy search is O(bins²) time
// per tensor, whatever the number of images. The guard keeps five class
// indices per evaluated image. Models with external data (over 2 GB) are
// refused.
package quantize
