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

// TestResolveUserLocation (issue 13): a binary run outside the checkout
// finds the library in the per-user location, and the error for a missing
// library names the installed and per-user paths.
func TestResolveUserLocation(t *testing.T) {
	t.Setenv(EnvLibrary, "")
	data := t.TempDir()
	t.Setenv("XDG_DATA_HOME", data)
	t.Chdir(t.TempDir())
	want := filepath.Join(data, "bitrun", "onnxruntime", "libonnxruntime.so")
	if got, searched := Resolve(""); got != "" && !strings.HasSuffix(got, defaultRel) {
		t.Fatalf("empty per-user location: got %q (searched %v)", got, searched)
	} else if got == "" && !strings.Contains(strings.Join(searched, " "), want) {
		t.Errorf("the search skipped %s: %v", want, searched)
	}
	if err := os.MkdirAll(filepath.Dir(want), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(want, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The test binary's folder (in /tmp) holds no install: the per-user file wins.
	if got, searched := Resolve(""); got != want && !strings.HasSuffix(got, defaultRel) {
		t.Errorf("got %q, want %s (searched %v)", got, want, searched)
	}
	msg := notFound([]string{"x"}, nil).Error()
	for _, s := range []string{"make install PREFIX=", "lib/bitrun/libonnxruntime.so", "ORT_DEST="} {
		if !strings.Contains(msg, s) {
			t.Errorf("%q lacks %q", msg, s)
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
