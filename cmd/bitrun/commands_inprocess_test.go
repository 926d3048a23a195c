package main

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bitrun/bitrun/finetune"
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
