package main

// Helpers shared by the command tests: the CLI run in-process, and
// assertions and fixtures more than one test file uses.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/viper"
)

// runCaptured runs the CLI in-process through run (so exit codes are the
// real ones) with os.Stdout and os.Stderr captured.
func runCaptured(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	dir := t.TempDir()
	outF, err := os.Create(filepath.Join(dir, "stdout"))
	if err != nil {
		t.Fatal(err)
	}
	errF, err := os.Create(filepath.Join(dir, "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	oldOut, oldErr := os.Stdout, os.Stderr
	os.Stdout, os.Stderr = outF, errF
	func() {
		defer func() { os.Stdout, os.Stderr = oldOut, oldErr }()
		code = run(args)
	}()
	outF.Close()
	errF.Close()
	o, _ := os.ReadFile(outF.Name())
	e, _ := os.ReadFile(errF.Name())
	return string(o), string(e), code
}

// execCLI runs the bitrun command line in-process and returns its stdout,
// stderr and error.
func execCLI(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	return execCLIWith(t, nil, args...)
}

// execCLIWith is execCLI with extra commands added to the root.
func execCLIWith(t *testing.T, extra []*cobra.Command, args ...string) (string, string, error) {
	t.Helper()
	// Each run gets fresh configuration, as a new process would: flag
	// bindings of earlier runs must not leak into this one.
	cfg = viper.New()
	root := newRoot()
	for _, c := range extra {
		root.AddCommand(c)
	}
	var out, errb bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return out.String(), errb.String(), err
}

// runJSON runs the CLI with runCaptured, fails the test unless it exits 0
// with JSON on stdout, decodes that into v and returns stderr.
func runJSON(t *testing.T, v any, args ...string) (stderr string) {
	t.Helper()
	stdout, stderr, code := runCaptured(t, args...)
	if code != exitOK {
		t.Fatalf("exit %d\nstderr: %s", code, stderr)
	}
	if err := json.Unmarshal([]byte(stdout), v); err != nil {
		t.Fatalf("stdout is not the summary JSON: %v\n%s", err, stdout)
	}
	return stderr
}

// parsedCommand returns the command name with args parsed and the
// configuration loaded (fresh, with no config file), as the root does
// before the command's read step runs.
func parsedCommand(t *testing.T, name string, args ...string) *cobra.Command {
	t.Helper()
	return parsed(t, name, nil, args)
}

// readFlags is the read step of a command given args: build makes it
// with its flags bound to fresh options (newFinetuneCmd, newServeCmd), in
// place of the root's command of its name; the args are parsed as
// parsedCommand does, and the options completed by complete.
func readFlags[O any](t *testing.T, build func(*O) *cobra.Command, complete func(*cobra.Command, []string, *O) error, args ...string) (O, error) {
	t.Helper()
	o := new(O)
	cmd := build(o)
	return bound(o, complete)(parsed(t, cmd.Name(), cmd, args), nil)
}

func parsed(t *testing.T, name string, replace *cobra.Command, args []string) *cobra.Command {
	t.Helper()
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	cfg = viper.New()
	root := newRoot()
	cmd, _, err := root.Find([]string{name})
	if err != nil {
		t.Fatal(err)
	}
	if replace != nil {
		root.RemoveCommand(cmd)
		root.AddCommand(replace)
		cmd = replace
	}
	if err := cmd.ParseFlags(args); err != nil {
		t.Fatal(err)
	}
	if err := loadConfig(cmd); err != nil {
		t.Fatal(err)
	}
	return cmd
}

// wantUsage reports an error unless err is a usage error whose message
// holds every one of wants; label names the case.
func wantUsage(t *testing.T, label string, err error, wants ...string) {
	t.Helper()
	if !errors.As(err, new(usageError)) {
		t.Errorf("%s: %v, want a usage error", label, err)
		return
	}
	for _, w := range wants {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%s: %q lacks %q", label, err, w)
		}
	}
}

// writePNGFile writes img as a PNG file at path.
func writePNGFile(t *testing.T, path string, img image.Image) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := png.Encode(f, img); err != nil {
		t.Fatal(err)
	}
}

// initCheckpoint writes a freshly initialised checkpoint to path with
// bitrun init and flags (--arch and the like), failing the test when init
// fails.
func initCheckpoint(t *testing.T, path string, flags ...string) {
	t.Helper()
	if _, stderr, code := runCaptured(t, append([]string{"init", "--out", path}, flags...)...); code != exitOK {
		t.Fatalf("init %q: exit %d: %s", flags, code, stderr)
	}
}

// writeTestFile writes content to the file name in dir and returns its
// path, failing the test when it cannot.
func writeTestFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
