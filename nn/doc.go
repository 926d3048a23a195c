// Package nn is bitrun's native float32 tensor engine: the kernels BiT needs
// (convolution, weight standardisation, GroupNorm, ReLU, padding, pooling,
// linear) on NCHW tensors, parallel across cores, with matrix products routed
// through a pluggable GEMM backend (pure Go always; OpenBLAS when its shared
// library is present).
package nn
