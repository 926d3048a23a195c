// Package eval measures image classifiers on labelled datasets: top-1 and
// top-5 accuracy, per-class accuracy, the confusion matrix and throughput.
//
// A Classifier turns a preprocessed NCHW batch into logits. Two
// implementations are provided: ONNX (any float32 NCHW ONNX classifier run
// through runtime.Predictor, preprocessing read from the model's bitrun.*
// metadata or given as Overrides) and Native (a model.Model run by bitrun's
// own engine). Run feeds a data.Dataset through a classifier in batches,
// decoding and preprocessing the next batch on other goroutines while the
// current one is inferred, and returns a Report, which can be written as a
// text table (WriteText), JSON (WriteJSON) or a confusion-matrix heat map
// (WriteConfusionPNG).
//
// Resources: Run holds three batches of preprocessed pixels in memory
// (3 × batch × channels × size² float32 values) plus the classifier's own
// working memory. The confusion matrix is classes² int64 values: a
// 21843-class model would need 3.8 GB, so Run refuses more than MaxClasses.
package eval
