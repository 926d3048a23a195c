package main

import (
	"context"
	"fmt"
	"os"

	"github.com/bitrun/bitrun/runtime"
	"github.com/bitrun/bitrun/zoo"
	"github.com/spf13/cobra"
)

// addWeightsFlags adds --weights FILE and --model NAME (a zoo name, resolved
// from the cache and pulled when allowed), bound to r, to a command that
// reads a checkpoint, with the zoo's cache, mirror and --offline flags.
func addWeightsFlags(cmd *cobra.Command, r *weightsRef) {
	cmd.Flags().StringVar(&r.file, "weights", "", "checkpoint file (.npz)")
	cmd.Flags().StringVar(&r.name, "model", "", "zoo model name (e.g. BiT-M-R50x1), resolved from the cache; pulled unless --offline")
	addZooFlagSet(cmd, false)
}

// weightsRef is the checkpoint a command names with --weights FILE or
// --model NAME (addWeightsFlags), completed by complete. check applies the
// flag rules; resolve gives the file, pulling a --model from the zoo when
// it is not cached.
type weightsRef struct {
	file string      // --weights
	name string      // --model, a zoo name
	zoo  zoo.Options // how name is resolved (set only when name is)
}

// complete reads the zoo settings of a --model; nothing is opened or
// downloaded.
func (r *weightsRef) complete(cmd *cobra.Command) error {
	if r.name == "" {
		return nil
	}
	var err error
	r.zoo, err = zooOptions(cmd)
	r.zoo.SkipLabels = true
	return err
}

// given reports whether --weights or --model is set: what a command checks
// its other flags against before resolve, which may download.
func (r weightsRef) given() bool { return r.file != "" || r.name != "" }

// checkOne requires the checkpoint exactly once: by alt (another flag or an
// argument, "" when not given) or by --weights/--model, with both and
// neither the usage errors given; then check. A command with no other way
// passes "" for alt and both.
func (r weightsRef) checkOne(alt, both, neither string) error {
	switch {
	case alt != "" && r.given():
		return usagef("%s", both)
	case alt == "" && !r.given():
		return usagef("%s", neither)
	}
	return r.check()
}

// check refuses both flags at once and a --model that is not a zoo name
// (usage errors).
func (r weightsRef) check() error {
	if r.file != "" && r.name != "" {
		return usagef("--weights and --model are exclusive")
	}
	if r.name != "" {
		if _, err := zoo.ParseName(r.name); err != nil {
			return usagef("--model: %v", err)
		}
	}
	return nil
}

// resolve returns the checkpoint path; "" with a nil error when neither
// flag was given. A --model name is looked up in the cache (verified against
// its recorded digest) and pulled when missing, unless offline (a pull that
// fails for want of a network says how to go on without one); progress goes
// to the zoo options' writer.
func (r weightsRef) resolve(ctx context.Context) (string, error) {
	if err := r.check(); err != nil || r.name == "" {
		return r.file, err
	}
	res, err := zoo.Pull(ctx, r.name, r.zoo)
	if err != nil {
		return "", offlineHint(fmt.Errorf("--model %s: %w", r.name, err), r.name)
	}
	rememberDigest(res.Path, res.SHA256)
	return res.Path, nil
}

// addModelFlags adds the model flag group of a command that runs --onnx
// FILE on ONNX Runtime (with the ORT flags) or --weights FILE / --model
// NAME on the native engine, bound to m.
func addModelFlags(cmd *cobra.Command, m *modelRef) {
	cmd.Flags().StringVar(&m.onnx, "onnx", "", "ONNX model file (runs on ONNX Runtime: needs a cgo build and make setup)")
	addWeightsFlags(cmd, &m.weights)
	addORTFlags(cmd)
}

// modelRef is the model of a command that takes --onnx FILE or
// --weights FILE / --model NAME for the native engine (addModelFlags),
// completed by complete.
type modelRef struct {
	onnx    string // --onnx
	weights weightsRef
	runtime runtime.Options // ONNX Runtime settings, read with --onnx only
}

// complete reads the zoo settings of a --model, and the ORT flags for an
// --onnx model.
func (m *modelRef) complete(cmd *cobra.Command) error {
	if err := m.weights.complete(cmd); err != nil || m.onnx == "" {
		return err
	}
	var err error
	m.runtime, err = ortOptions(cmd)
	return err
}

// check requires exactly one model and the flag rules of --weights/--model;
// a --model name is not resolved, so a usage error never waits for a
// download.
func (m modelRef) check() error {
	return m.weights.checkOne(m.onnx, "--onnx and --weights/--model are exclusive",
		"give a model: --onnx FILE, or --weights FILE / --model NAME for the native engine")
}

// checkFiles checks the files named by --onnx and --weights (not a --model
// name, which may download) before a command does slower work.
func (m modelRef) checkFiles() error {
	if m.onnx != "" {
		return checkModelFile(m.onnx, "--onnx", kindONNX)
	}
	if m.weights.file != "" {
		return checkModelFile(m.weights.file, "--weights", kindNPZ)
	}
	return nil
}

// resolve returns the model's file: exactly one of onnxPath and weights is
// set (a --model pulled as weightsRef.resolve does).
func (m modelRef) resolve(ctx context.Context) (onnxPath, weights string, err error) {
	if err := m.check(); err != nil {
		return "", "", err
	}
	if m.onnx != "" {
		return m.onnx, "", nil
	}
	weights, err = m.weights.resolve(ctx)
	return "", weights, err
}

// readLabels reads a --labels file (one label per line, or a JSON array)
// with parse; nil when path is "". A file that cannot be read or parsed is
// a state error (exit 1, no usage text) in every command, reported as
// "export: --labels F: ...".
func readLabels(command, path string, parse func(string) ([]string, error)) ([]string, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if err == nil {
		var labels []string
		if labels, err = parse(string(b)); err == nil {
			return labels, nil
		}
	}
	return nil, fmt.Errorf("%s: --labels %s: %w", command, path, err)
}
