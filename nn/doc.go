// Package nn is bitrun's native float32 tensor engine: the kernels BiT needs
// (convolution, weight standardisation, GroupNorm, ReLU, padding, pooling,
// linear) on NCHW tensors, plus the training kernels: forward variants that
// keep what the backward needs (backward_fwd.go, padpool.go), the backward
// kernels (backward.go), the loss (loss.go) and the checkpoint-layout
// convolutions and weight standardisation (convtrain.go, wshwio.go). The
// optimiser lives in package train.
//
// # GEMM backends
//
// Convolutions run as matrix products of the kernel [O, C·KH·KW] with the
// im2col matrix of each image (images with small outputs are grouped into
// one product). With PureGo the kernel is packed once per call and the
// im2col panels are packed straight from the images, never materialised;
// other backends get an explicit im2col matrix. A ConvKernel keeps its
// packed panels across calls (inference applies the same kernels to every
// batch). Every product goes through a GEMM backend:
//
//   - PureGo ("go"): always available; a packed, cache-blocked product with
//     an AVX-512 6×32 assembly micro-kernel on amd64 CPUs that have AVX-512F,
//     AVX2+FMA 6×16 on those with AVX2 only (plain Go elsewhere or with the
//     purego build tag). Its convolutions pack GEMM panels straight from the
//     images instead of building im2col matrices.
//   - OpenBLAS ("openblas"): libopenblas loaded at run time through
//     internal/openblas (needs cgo; $BITRUN_OPENBLAS_LIB names the file).
//   - Gonum ("gonum"): gonum's BLAS, a slower reference.
//
// $BITRUN_GEMM (auto, go, openblas, gonum; default auto = PureGo on AVX-512
// CPUs, else OpenBLAS when it loads, else PureGo) picks the backend the first time one is needed;
// Backend reports it, BackendError says why a requested one could not be
// used, SetBackend / SelectBackend override it, and Backends lists all that
// load (the test suite runs against each).
//
// # Training
//
// The training convolutions (ConvHWIOInto, ConvHWIOBackward) take kernels in
// the checkpoint layout [KH,KW,C,O], the layout the optimiser updates, and
// always run on the pure-Go GEMM: each of their products (the forward, the
// weight gradient and the input gradient) packs its panels straight from the
// NCHW activations and gradients, so a training step builds no im2col
// matrix, transposes no kernel and copies no gradient (an external BLAS takes
// only plain matrices). Weight standardisation and its backward work in the
// same layout (StandardizationHWIO, StandardizePrepareHWIO), and a step's
// update runs the standardisation backward fused with momentum SGD
// (StandardizedSGD: two passes over a kernel). The tests check every kernel
// against the float64 reference of internal/gradcheck and its finite
// differences.
//
// # Parallelism
//
// Kernels spread work over GOMAXPROCS goroutines, also at batch 1: a product
// is split into column (or row) blocks, im2col and GroupNorm into chunks.
// Parallel regions share a budget of GOMAXPROCS-1 helper goroutines, so
// nested regions (a product inside a loop over images) and concurrent callers
// (a server running two batches) fall back to running inline instead of
// oversubscribing the cores. OpenBLAS's own thread pool is set to one thread
// for the same reason. A product is split by shape and GOMAXPROCS only, so
// PureGo results are bit-for-bit reproducible for a given GOMAXPROCS.
//
// # Memory
//
// im2col matrices, packed operands and grouped-product buffers are pooled
// and reused across calls; the functions that return a new tensor allocate
// only that tensor. The pure-Go GEMM keeps up to one set of packing buffers
// (about 3.3 MB) per core for the life of the process. Kernels panic on shape mismatches (programmer errors);
// they never see untrusted input directly.
package nn
