// Package model is the BiT architecture (ResNet-v2 with GroupNorm and Weight
// Standardization): configurations for the released sizes and small test
// networks, weights keyed by the official checkpoint names, the .npz
// checkpoint format, initialisation, and native inference on package nn.
package model
