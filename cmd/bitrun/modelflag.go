package main

import (
	"context"
	"fmt"

	"github.com/bitrun/bitrun/zoo"
	"github.com/spf13/cobra"
)

// addWeightsFlags adds --weights FILE and --model NAME (a zoo name, resolved
// from the cache and pulled when allowed) to a command that reads a checkpoint,
// with the zoo's cache, mirror and --offline flags.
func addWeightsFlags(cmd *cobra.Command) {
	cmd.Flags().String("weights", "", "checkpoint file (.npz)")
	cmd.Flags().String("model", "", "zoo model name (e.g. BiT-M-R50x1), resolved from the cache; pulled unless --offline")
	addZooFlagSet(cmd, false)
}

// weightsGiven reports whether --weights or --model is set: what a command
// checks its other flags against before weightsPath, which may download.
func weightsGiven(cmd *cobra.Command) bool {
	w, _ := cmd.Flags().GetString("weights")
	m, _ := cmd.Flags().GetString("model")
	return w != "" || m != ""
}

// weightsPath returns the checkpoint path named by --weights or --model.
// An empty result with nil error means neither flag was given. A --model name
// is looked up in the cache (verified against its recorded digest) and pulled
// when missing, unless offline; progress goes to stderr.
func weightsPath(cmd *cobra.Command) (string, error) {
	w, _ := cmd.Flags().GetString("weights")
	m, _ := cmd.Flags().GetString("model")
	if w != "" && m != "" {
		return "", usagef("--weights and --model are exclusive")
	}
	if m == "" {
		return w, nil
	}
	if _, err := zoo.ParseName(m); err != nil {
		return "", usagef("--model: %v", err)
	}
	o, err := zooOptions(cmd)
	if err != nil {
		return "", err
	}
	o.SkipLabels = true
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	return pullWeights(ctx, m, o)
}

// pullWeights returns the cached checkpoint of the zoo model name, pulled
// with o when missing (unless o.Offline).
func pullWeights(ctx context.Context, name string, o zoo.Options) (string, error) {
	res, err := zoo.Pull(ctx, name, o)
	if err != nil {
		return "", fmt.Errorf("--model %s: %w", name, err)
	}
	return res.Path, nil
}

// modelSource returns the model of a command that takes --onnx FILE or
// --weights FILE / --model NAME: exactly one of onnxPath and weights is set.
// The flags are checked before a --model name is resolved, so a usage error
// never waits for a download.
func modelSource(cmd *cobra.Command) (onnxPath, weights string, err error) {
	onnxPath, _ = cmd.Flags().GetString("onnx")
	switch {
	case onnxPath != "" && weightsGiven(cmd):
		return "", "", usagef("--onnx and --weights/--model are exclusive")
	case onnxPath != "":
		return onnxPath, "", nil
	case !weightsGiven(cmd):
		return "", "", usagef("give a model: --onnx FILE, or --weights FILE / --model NAME for the native engine")
	}
	weights, err = weightsPath(cmd)
	return "", weights, err
}
