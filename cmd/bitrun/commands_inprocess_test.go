package main

// The in-process command tests (issue 17): each command runs from its
// options struct alone, without cobra (validate, then run(ctx, opts,
// stdout, stderr)), and validate refuses bad values as usage errors.

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bitrun/bitrun/export"
	"github.com/bitrun/bitrun/finetune"
	"github.com/bitrun/bitrun/serve"
	"github.com/bitrun/bitrun/zoo"
)

// TestInitInspectInProcess: init and inspect run from their options alone,
// without cobra (issue 17), and validate refuses bad values as usage errors.
func TestInitInspectInProcess(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "tiny.npz")
	o := initOptions{arch: "tiny", classes: 3, out: out, seed: 1}
	if err := o.validate(); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if err := runInit(context.Background(), o, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	if stdout.Len() != 0 || !strings.HasPrefix(stderr.String(), "wrote "+out) {
		t.Errorf("init: stdout %q, stderr %q", stdout.String(), stderr.String())
	}
	for _, tc := range []struct {
		name string
		o    initOptions
		want string
	}{
		{"no arch", initOptions{classes: 3, out: out}, "--arch is required"},
		{"no out", initOptions{arch: "tiny", classes: 3}, "--out is required"},
		{"classes", initOptions{arch: "tiny", out: out}, "--classes must be positive"},
		{"arch", initOptions{arch: "R7x1", classes: 3, out: out}, "--arch"},
	} {
		wantUsage(t, tc.name, tc.o.validate(), tc.want)
	}
	if err := o.validate(); err == nil || errors.As(err, new(usageError)) {
		t.Errorf("existing --out: %v, want a plain error", err)
	}

	in := inspectOptions{file: out, resolution: 32}
	if err := in.validate(); err != nil {
		t.Fatal(err)
	}
	stdout.Reset()
	if err := runInspect(context.Background(), in, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout.String(), "arch:        tiny") || !strings.Contains(stdout.String(), "classes:     3") {
		t.Errorf("inspect printed:\n%s", stdout.String())
	}
	wantUsage(t, "inspect both", inspectOptions{file: out, weights: weightsRef{file: out}, resolution: 32}.validate(), "not both")
	wantUsage(t, "inspect none", inspectOptions{resolution: 32}.validate(), "no checkpoint")
	wantUsage(t, "inspect model", inspectOptions{weights: weightsRef{name: "../x"}, resolution: 32}.validate(), "--model")
}

// TestZooInProcess: the zoo subcommands check --sha256 and --name in
// validate and run without cobra.
func TestZooInProcess(t *testing.T) {
	pin := strings.Repeat("ab", 32)
	for _, tc := range []struct {
		name string
		o    zooCmdOptions
		want string
	}{
		{"pin two", zooCmdOptions{args: []string{"a", "b"}, zoo: zoo.Options{SHA256: pin}}, "exactly one NAME"},
		{"pin bad", zooCmdOptions{args: []string{"a"}, zoo: zoo.Options{SHA256: "nothex"}}, "--sha256"},
		{"import name", zooCmdOptions{args: []string{"f.npz"}, importing: true}, "--name NAME is required"},
	} {
		wantUsage(t, tc.name, tc.o.validate(), tc.want)
	}
	if err := (zooCmdOptions{args: []string{"a"}, zoo: zoo.Options{SHA256: pin}}).validate(); err != nil {
		t.Errorf("one pinned name: %v", err)
	}
	dir := t.TempDir()
	var stdout, stderr bytes.Buffer
	o := zooCmdOptions{zoo: zoo.Options{CacheDir: dir, Offline: true}, cacheSource: "flag --cache-dir"}
	if err := runZooPath(context.Background(), o, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(stdout.String()) != dir || stderr.String() != "cache dir from flag --cache-dir\n" {
		t.Errorf("zoo path: stdout %q, stderr %q", stdout.String(), stderr.String())
	}
}

// TestVersionInProcess: version prints its lines from runVersion.
func TestVersionInProcess(t *testing.T) {
	var stdout bytes.Buffer
	if err := runVersion(context.Background(), versionOptions{}, &stdout, nil); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"bitrun: ", "commit: ", "gemm: ", "jpeg: "} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("version lacks %q:\n%s", want, stdout.String())
		}
	}
}

// TestFinetuneRecipeConvention: the recipe flags follow the settings
// convention (style rule 5): 0 keeps the HyperRule's value, a negative
// --warmup or --mixup-alpha switches warmup or MixUp off.
func TestFinetuneRecipeConvention(t *testing.T) {
	rule, err := finetune.HyperRuleFor(50_000, 32*32, finetune.RulePaper)
	if err != nil {
		t.Fatal(err)
	}
	if rule.Warmup == 0 || rule.MixupAlpha == 0 {
		t.Fatalf("the rule for 50k examples has warmup %d, MixUp %g: want both on", rule.Warmup, rule.MixupAlpha)
	}
	for _, tc := range []struct {
		name    string
		r       recipeFlags
		warmup  int
		mixup   float64
		changes int
	}{
		{"zero keeps the rule's", recipeFlags{}, rule.Warmup, rule.MixupAlpha, 0},
		{"negative is off", recipeFlags{warmup: -1, mixupAlpha: -1}, 0, 0, 2},
		{"positive is the value", recipeFlags{warmup: 7, mixupAlpha: 0.2}, 7, 0.2, 2},
		{"steps rescale the warmup", recipeFlags{steps: rule.Steps / 2}, rule.Scale(rule.Steps / 2).Warmup, rule.MixupAlpha, 1},
	} {
		h, changes, err := tc.r.apply(rule)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if h.Warmup != tc.warmup || h.MixupAlpha != tc.mixup || len(changes) != tc.changes {
			t.Errorf("%s: warmup %d, MixUp %g, changes %q; want %d, %g and %d changes", tc.name, h.Warmup, h.MixupAlpha, changes, tc.warmup, tc.mixup, tc.changes)
		}
	}
	for _, tc := range []struct {
		name string
		r    recipeFlags
		want string
	}{
		{"steps", recipeFlags{steps: -1}, "--steps -1"},
		{"lr", recipeFlags{lr: -0.1}, "--lr -0.1"},
		{"warmup", recipeFlags{warmup: rule.Steps}, "--warmup"},
		{"decays", recipeFlags{decays: new("9,3")}, "--decays"},
	} {
		_, _, err := tc.r.apply(rule)
		wantUsage(t, tc.name, err, tc.want)
	}

	// The flags reach recipeFlags as given; an explicit 0, which meant
	// "none" before the convention, is noted.
	o, err := readFlags(t, newFinetuneCmd, finetuneFlags, "--data", "d", "--weights", "w.npz", "--out", "o", "--warmup", "0", "--mixup-alpha", "-1")
	if err != nil {
		t.Fatal(err)
	}
	if o.recipe.warmup != 0 || o.recipe.mixupAlpha != -1 || len(o.notices) != 1 || !strings.Contains(o.notices[0], "--warmup 0") {
		t.Errorf("recipe %+v, notices %q", o.recipe, o.notices)
	}
	if err := o.validate(); err != nil {
		t.Errorf("validate: %v", err)
	}
}

// TestExportInProcess: export runs from its options struct alone, without
// cobra (issue 17: validate, then run(ctx, opts, stdout, stderr)), and
// validate refuses bad values as usage errors before any download.
func TestExportInProcess(t *testing.T) {
	m := tinyModel(t)
	dir := t.TempDir()
	labels := writeTestFile(t, dir, "labels.txt", "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n")
	base := func() exportOptions {
		return exportOptions{weights: weightsRef{file: m.npz}, out: filepath.Join(dir, "m.onnx"), resolution: 32,
			opset: export.DefaultOpset, externalData: "auto"}
	}
	o := base()
	o.labelsFile = labels
	if err := o.validate(); err != nil {
		t.Fatal(err)
	}
	if len(o.labels) != 10 {
		t.Fatalf("labels %q", o.labels)
	}
	var out, errOut bytes.Buffer
	if err := runExport(context.Background(), o, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(errOut.String(), "exported "+o.out) || out.Len() != 0 {
		t.Errorf("stdout %q, stderr %q", out.String(), errOut.String())
	}
	if _, err := os.Stat(o.out); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name string
		edit func(*exportOptions)
		want string
	}{
		{"no weights", func(o *exportOptions) { o.weights = weightsRef{} }, "give the weights"},
		{"no out", func(o *exportOptions) { o.out = "" }, "--out is required"},
		{"resolution", func(o *exportOptions) { o.resolution = 0 }, "--resolution 0"},
		{"external data", func(o *exportOptions) { o.externalData = "sometimes" }, "--external-data"},
		{"opset", func(o *exportOptions) { o.opset = 9 }, "--opset 9"},
	} {
		o := base()
		tc.edit(&o)
		wantUsage(t, tc.name, o.validate(), tc.want)
	}
	// An existing --out without --force is a state error, not a usage error.
	o = base()
	if err := o.validate(); err == nil || errors.As(err, new(usageError)) {
		t.Errorf("existing --out: %v, want a plain error", err)
	}
}

// TestServeInProcess: serve runs from its options struct alone, without
// cobra (issue 17: validate, then run(ctx, opts, stdout, stderr)); validate
// names the models in order and refuses flag combinations as usage errors,
// and the settings reach serve unchanged (zero: the default, negative: off).
func TestServeInProcess(t *testing.T) {
	dir := t.TempDir()
	a, b := writeTestFile(t, dir, "a.onnx", "x"), writeTestFile(t, dir, "b.onnx", "x")
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

// TestBenchInProcess: bench runs from its options struct alone, without
// cobra (issue 17: validate, then run(ctx, opts, stdout, stderr)), and
// validate refuses flag combinations as usage errors.
func TestBenchInProcess(t *testing.T) {
	o := benchOptions{arch: "tiny", classes: 3, resolution: 16, batch: 2, runs: 2, warmup: 1, streams: 1,
		train: true, freeze: "all"}
	if err := o.validate(); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if err := runBench(context.Background(), o, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"engine:      native-train", "per image:", "work:"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
	if !strings.HasPrefix(errOut.String(), "bench: native-train") {
		t.Errorf("stderr %q", errOut.String())
	}
	for _, tc := range []struct {
		name string
		o    benchOptions
		want string
	}{
		{"no model", benchOptions{resolution: 16, batch: 1, runs: 1, streams: 1}, "give a model"},
		{"gemm and arch", benchOptions{gemm: true, arch: "tiny", resolution: 16, batch: 1, runs: 1, streams: 1}, "--gemm"},
		{"streams native", benchOptions{arch: "tiny", resolution: 16, batch: 1, runs: 1, streams: 2}, "--streams applies"},
		{"train small", benchOptions{arch: "tiny", train: true, resolution: 4, batch: 1, runs: 1, streams: 1}, "--resolution 4: want 16..8192 pixels"},
		{"channels", benchOptions{arch: "tiny", channels: 1, resolution: 16, batch: 1, runs: 1, streams: 1}, "BiT models take 3"},
	} {
		wantUsage(t, tc.name, tc.o.validate(), tc.want)
	}
}
