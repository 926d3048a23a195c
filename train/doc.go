// Package train is bitrun's native training engine for BiT networks: a Net
// that runs the forward keeping what the backward needs and computes the
// gradient of every named weight (gradient accumulation over micro-batches,
// frozen parameters by predicate or preset), SGD with momentum and weight
// decay (Net.Step applies it straight from the accumulators, each conv
// kernel's standardisation backward fused with its update and its next
// standardisation and packing; a Net keeps the packed kernels between steps,
// so parameters changed other than through Step need Net.Invalidate), learning-rate
// schedules (linear warmup, staircase decays: the BiT
// upstream recipe and the shape of the fine-tuning HyperRule), MixUp, and Run,
// the from-scratch training loop behind `bitrun train` with its run folder
// (metrics.jsonl, atomic checkpoints, exact resume, summary.json).
//
// Numerics: the kernels are nn's training kernels (float32, deterministic
// reductions), checked against float64 finite differences; the forward
// matches model.Model.Forward. Data order and augmentation are pure functions
// of (seed, step), so a resumed run ends bit-identical to an uninterrupted one
// on the same machine and GEMM backend.
//
// Resources: a Net holds every activation of a micro-batch (roughly 3× the
// inference activations; R50x1 at 128×128 needs about 60 MB per image) plus
// one gradient buffer and one momentum buffer per trainable parameter, and
// every conv kernel's standardised packings (about twice the kernels). The
// package never prints; Run reports through Options.Logger and
// Options.Progress.
package train
