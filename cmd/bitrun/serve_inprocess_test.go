package main

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bitrun/bitrun/serve"
)

// TestServeInProcess: serve runs from its options struct alone, without
// cobra (issue 17: validate, then run(ctx, opts, stdout, stderr)); validate
// names the models in order and refuses flag combinations as usage errors,
// and the settings reach serve unchanged (zero: the default, negative: off).
func TestServeInProcess(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.onnx"), filepath.Join(dir, "b.onnx")
	for _, p := range []string{a, b} {
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	base := func() serveOptions {
		return serveOptions{logFormat: "text", grace: time.Second,
			server: serve.Config{Addr: "127.0.0.1:0"}, model: serve.Options{MaxBatch: 4, BatchDelay: -1}}
	}

	o := base()
	o.onnx, o.names, o.weights = []string{a, b}, []string{"first"}, weightsRef{file: filepath.Join(dir, "run", "weights.npz")}
	if err := o.validate(); err != nil {
		t.Fatal(err)
	}
	want := []serveModel{{name: "first", onnx: a}, {name: "b", onnx: b}, {name: "run", checkpoint: true}}
	if len(o.models) != len(want) {
		t.Fatalf("models %+v, want %+v", o.models, want)
	}
	for i := range want {
		if o.models[i] != want[i] {
			t.Errorf("model %d: %+v, want %+v", i, o.models[i], want[i])
		}
	}

	for _, tc := range []struct {
		name string
		edit func(*serveOptions)
		want string
	}{
		{"no model", func(o *serveOptions) {}, "give a model"},
		{"log format", func(o *serveOptions) { o.onnx, o.logFormat = []string{a}, "xml" }, "--log-format"},
		{"addr", func(o *serveOptions) { o.onnx, o.server.Addr = []string{a}, "nope" }, "--addr"},
		{"weights and model", func(o *serveOptions) { o.weights = weightsRef{file: "w.npz", name: "BiT-M-R50x1"} }, "exclusive"},
		{"names", func(o *serveOptions) { o.onnx, o.names = []string{a}, []string{"x", "y"} }, "2 --name values for 1 models"},
		{"same name", func(o *serveOptions) { o.onnx = []string{a, a} }, "two models named"},
		{"bad name", func(o *serveOptions) { o.onnx, o.names = []string{a}, []string{"../x"} }, "model name"},
		{"poll", func(o *serveOptions) { o.onnx, o.poll = []string{a}, time.Second }, "--repository-poll"},
		{"repo and models", func(o *serveOptions) { o.onnx, o.repoDir = []string{a}, dir }, "not both"},
		{"model dir and models", func(o *serveOptions) { o.onnx, o.modelDir = []string{a}, dir }, "not both"},
		{"model dir files", func(o *serveOptions) { o.modelDir = dir }, "holds 2 .onnx files"},
	} {
		o := base()
		tc.edit(&o)
		wantUsage(t, tc.name, o.validate(), tc.want)
	}
	o = base()
	o.onnx = []string{filepath.Join(dir, "missing.onnx")}
	if err := o.validate(); err == nil || errors.As(err, new(usageError)) {
		t.Errorf("missing model: %v, want a plain error", err)
	}

	// The server listens before the models load, and a model that cannot
	// be opened ends the run with its error (after closing the server).
	o = base()
	o.onnx = []string{a}
	if err := o.validate(); err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := runServe(ctx, o, io.Discard, &logs); err == nil || errors.As(err, new(usageError)) {
		t.Errorf("corrupt model: %v, want a plain error", err)
	}
	if !strings.Contains(logs.String(), "msg=listening") {
		t.Errorf("logs lack the listening line:\n%s", logs.String())
	}
}

// TestServeFlagsMapStraight: the serve flags reach serve.Options and
// serve.Config as given, with no translation in the command: --batch-delay
// 0 is serve's default, a negative one no wait.
func TestServeFlagsMapStraight(t *testing.T) {
	for _, tc := range []struct {
		arg  string
		want time.Duration
	}{{"0", 0}, {"-1ms", -time.Millisecond}, {"20ms", 20 * time.Millisecond}} {
		o, err := readFlags(t, newServeCmd, serveFlags, "--onnx", "m.onnx", "--batch-delay", tc.arg, "--max-queue", "0", "--workers", "0")
		if err != nil {
			t.Fatal(err)
		}
		if o.model.BatchDelay != tc.want || o.model.MaxQueue != 0 || o.model.Workers != 0 {
			t.Errorf("--batch-delay %s: options %+v, want BatchDelay %v", tc.arg, o.model, tc.want)
		}
	}
}
