package main

import (
	"github.com/spf13/cobra"
)

// addWeightsFlags adds --weights FILE and --model NAME (a zoo name, resolved
// from the cache and pulled when allowed) to a command that reads a checkpoint.
func addWeightsFlags(cmd *cobra.Command) {
	cmd.Flags().String("weights", "", "checkpoint file (.npz)")
	cmd.Flags().String("model", "", "zoo model name (e.g. BiT-M-R50x1), resolved from the cache; pulled unless --offline")
}

// weightsPath returns the checkpoint path named by --weights or --model.
// An empty result with nil error means neither flag was given.
func weightsPath(cmd *cobra.Command) (string, error) {
	w, _ := cmd.Flags().GetString("weights")
	m, _ := cmd.Flags().GetString("model")
	if w != "" && m != "" {
		return "", usagef("--weights and --model are exclusive")
	}
	if m != "" {
		// Filled in by the zoo work: resolve NAME from the cache, pulling when allowed.
		return "", usagef("--model %s: the model zoo is not available in this build", m)
	}
	return w, nil
}
