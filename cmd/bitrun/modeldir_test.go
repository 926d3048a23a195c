package main

import (
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestServeModelDir serves a folder in each layout KServe's storage
// initializer leaves at /mnt/models, named as a ServingRuntime names it
// (--name {{.Name}}), and probes it with `bitrun health`.
func TestServeModelDir(t *testing.T) {
	requireORTCLI(t)
	m := tinyModel(t)
	onnx, err := os.ReadFile(m.onnx)
	if err != nil {
		t.Fatal(err)
	}
	put := func(dir, rel string) {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, onnx, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct{ name, file string }{
		{"single model.onnx", "model.onnx"},
		{"single file of another name", "bit-s.onnx"},
		{"repository", "bit/1/model.onnx"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			put(dir, tc.file)
			base, _, stop := startServeCLI(t, "--model-dir", dir, "--name", "bit")
			defer stop()
			resp, err := http.Get(base + "/v2/models/bit/ready")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("/v2/models/bit/ready: %s", resp.Status)
			}
			out, _, err := execCLI(t, "health", "--url", base)
			if err != nil || !strings.Contains(out, "/v2/health/ready: 200") {
				t.Errorf("health: %v %q", err, out)
			}
		})
	}

	two, repo := t.TempDir(), t.TempDir()
	put(two, "a.onnx")
	put(two, "b.onnx")
	put(repo, "other/1/model.onnx")
	for _, args := range [][]string{
		{"serve", "--model-dir", filepath.Join(two, "a.onnx")},
		{"serve", "--model-dir", two},
		{"serve", "--model-dir", repo, "--name", "bit"},
		{"serve", "--model-dir", repo, "--name", "a", "--name", "b"},
		{"serve", "--model-dir", repo, "--onnx", m.onnx},
		{"serve", "--model-dir", repo, "--model-repository", repo},
		{"health", "--url", "ftp://127.0.0.1"},
		{"health", "--addr", "nope"},
	} {
		if _, _, err := execCLI(t, args...); !errors.As(err, new(usageError)) {
			t.Errorf("%v: got %v, want a usage error", args, err)
		}
	}
	// Nothing listening: a failure, not a usage error.
	if _, _, err := execCLI(t, "health", "--addr", "127.0.0.1:1", "--timeout", "2s"); err == nil || errors.As(err, new(usageError)) {
		t.Errorf("health of a closed port: %v", err)
	}
}
