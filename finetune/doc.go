// Package finetune transfers a pretrained BiT network to a new dataset with the
// BiT-HyperRule: the rule itself (resolution, schedule, MixUp, learning rate from
// the training set's size and image area), head-only and full fine-tuning on the
// native engine, few-shot selection, the train-to-test resolution adaptation
// step, and the run folder (weights, ONNX export, metrics, plots).
package finetune
