// Package finetune transfers a pretrained BiT network to a new dataset with the
// BiT-HyperRule: the rule itself (resolution, schedule, MixUp, learning rate from
// the training set's size and image area), head-only and full fine-tuning on the
// native engine, few-shot selection, the train-to-test resolution adaptation
// step, and the run folder (weights, ONNX export, metrics, plots).
//
// # The rule
//
// HyperRuleFor computes the recipe of bit-reference.md from the training-set
// size and image area; Scale shortens it keeping the warmup and decays at the
// same fractions; LR gives the rate of a step at an actual batch size
// (BaseLR × batch/BatchSize, linear warmup from 0, ×0.1 at each decay).
// Callers override fields after computing it and list the changes in
// Options.Changes; Run records the recipe as used in hyperrule.json.
//
// # Modes
//
// ModeFull fine-tunes every weight with train.Run (native engine; random
// crop and flip, pixel MixUp, exact resume) from the source weights with a
// zero-initialised head.
//
// ModeHead freezes the trunk and trains the pre-head GroupNorm affine and the
// linear head. The trunk output (the tensor entering the pre-head GroupNorm,
// [C,h,w] per image) is computed once, by ONNX Runtime on a graph cut from the
// export package's graph (the native engine when ONNX Runtime is unavailable,
// which is logged), for Options.Views augmented views of every training image:
// each view is the HyperRule's random crop and flip, drawn from (seed, view,
// image). Training then samples cached views, so the augmentation is limited
// to V draws per image instead of a fresh draw per step. MixUp, when the rule
// asks for it, is applied to the cached activations: because GroupNorm and
// ReLU follow, mixing activations is feature-level MixUp, not the pixel MixUp
// of the reference (which would need the trunk on every mixed batch); it is
// recorded as "mixup_on": "trunk activations". Set the alpha to 0 to leave it
// out. The head's forward and backward are train.Net's kernels (checked
// against train.Net with the "head+gn" preset in the tests).
//
// # Few-shot
//
// ExamplesPerClass k picks k seeded examples per class (data.PerClass); when
// the batch exceeds the selected examples, each batch element is drawn with
// replacement, as the reference does. The rule is computed on the selection.
//
// # Resolution adaptation
//
// With AdaptResolution R, after training the trunk is frozen and the pre-head
// GroupNorm affine and the head are fine-tuned on training images
// preprocessed the test way (square resize to R, no crop, flip or MixUp) —
// the BiT form of FixRes (Touvron et al. 2019): BiT has no batch statistics,
// so the last normalisation's affine and the classifier are what can absorb
// the change of apparent object size. The schedule is the rule's shape scaled
// to AdaptSteps; at most AdaptSteps×Batch training images (a seeded subset) are
// cached, since the schedule sees no more. Test top-1 at R is reported before
// and after, and the exported model's resolution is R.
//
// # Run folder and resume
//
// Run writes hyperrule.json (first; a resumed run must match it),
// metrics.jsonl, checkpoint.json with checkpoint/ (atomic: new files, then
// the record, then removal of the old files), weights.npz, model.onnx (WS
// folded, labels and preprocessing metadata), curve.png, confusion.png and
// summary.json. A cancelled context saves a checkpoint; Run with Resume ends
// bit-identical to an uninterrupted run on the same machine, GEMM backend and
// trunk engine (data order, views and MixUp are pure functions of seed and
// position). Adaptation, being short, is redone on resume.
//
// Resources: head mode holds Views × images × C×h×w float32 activations
// (Options.MaxCacheBytes caps it; 60k Fashion-MNIST images of the small BiT
// at 24–28 px are 2 KiB each), full mode what train.Run holds. The package
// never prints; it reports through Options.Logger and Options.Progress.
package finetune
