package ort

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestResolveOrder(t *testing.T) {
	dir := t.TempDir()
	lib := filepath.Join(dir, defaultRel)
	if err := os.MkdirAll(filepath.Dir(lib), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(lib, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(dir, "a", "b")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Chdir(sub)

	// Explicit beats the environment.
	t.Setenv(EnvLibrary, "/env/libonnxruntime.so")
	if got, _ := Resolve("/explicit.so"); got != "/explicit.so" {
		t.Errorf("explicit: got %q", got)
	}
	if got, _ := Resolve(""); got != "/env/libonnxruntime.so" {
		t.Errorf("env: got %q", got)
	}
	// Without either, the default install is found walking up from the working dir.
	t.Setenv(EnvLibrary, "")
	got, searched := Resolve("")
	if real, _ := filepath.EvalSymlinks(lib); got != lib && got != real {
		t.Errorf("walk up: got %q, want %q (searched %v)", got, lib, searched)
	}
	// Nothing anywhere: the system loader, and the search list says so.
	t.Chdir(t.TempDir())
	if got, searched := Resolve(""); got != "" || !strings.Contains(strings.Join(searched, " "), "system loader") {
		// The executable's folder might hold a real install (go test binaries live in /tmp).
		if got == "" || !strings.HasSuffix(got, defaultRel) {
			t.Errorf("no install: got %q searched %v", got, searched)
		}
	}
}

func TestNotFoundMessage(t *testing.T) {
	err := notFound([]string{"/a/lib.so"}, errors.New("boom"))
	for _, s := range []string{"make setup", "scripts/install-ort.sh", EnvLibrary, "/a/lib.so", "boom"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("%q lacks %q", err, s)
		}
	}
	if !errors.Is(err, ErrNotFound) {
		t.Error("not ErrNotFound")
	}
	if err := checkFile(filepath.Join(t.TempDir(), "missing.so"), []string{"x"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing file: %v", err)
	}
	if err := checkFile(t.TempDir(), []string{"x"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("directory: %v", err)
	}
}

func TestCheckVersion(t *testing.T) {
	for v, ok := range map[string]bool{"1.24.1": true, "1.24.0": true, "1.23.2": false, "1.25.0": false, "": false, "1.2.4": false} {
		err := checkVersion(v)
		if (err == nil) != ok {
			t.Errorf("checkVersion(%q) = %v", v, err)
		}
		if err != nil && (!errors.Is(err, ErrVersion) || !strings.Contains(err.Error(), v)) {
			t.Errorf("checkVersion(%q) error %q", v, err)
		}
	}
}
