//go:build cgo

package ort

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bitrun/bitrun/internal/ort/onnxtest"
)

func loadOrSkip(t *testing.T) string {
	t.Helper()
	v, err := Load("")
	onnxtest.Require(t, err)
	return v
}

func TestLoadOnce(t *testing.T) {
	v := loadOrSkip(t)
	if !strings.HasPrefix(v, WantVersion) {
		t.Fatalf("version %q", v)
	}
	path, v2 := Loaded()
	if path == "" || v2 != v {
		t.Fatalf("Loaded() = %q %q", path, v2)
	}
	// Loading the same library again is a no-op.
	if v3, err := Load(path); err != nil || v3 != v {
		t.Fatalf("reload: %q %v", v3, err)
	}
	// Another existing file cannot replace the loaded library.
	other := filepath.Join(t.TempDir(), "libonnxruntime.so")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(other, b[:min(len(b), 4096)], 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(other); err == nil || !strings.Contains(err.Error(), "already loaded") {
		t.Errorf("second library: err = %v", err)
	}
}

func TestSessionInfoAndRun(t *testing.T) {
	loadOrSkip(t)
	c := onnxtest.Classifier{C: 2, K: 3, W: []float32{1, 2, 3, 4, 5, 6}, B: []float32{0.5, 0, -0.5},
		Metadata: map[string]string{"k": "v"}}
	path, err := c.Model().Write(t.TempDir(), "c.onnx")
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSession(path, SessionOptions{IntraThreads: 1, InterThreads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	in, out := s.Inputs(), s.Outputs()
	if len(in) != 1 || in[0].Name != "pixels" || !in[0].Float || !in[0].IsTensor || len(in[0].Shape) != 4 || in[0].Shape[0] >= 0 || in[0].Shape[1] != 2 {
		t.Errorf("inputs %+v", in)
	}
	if len(out) != 1 || out[0].Name != "logits" {
		t.Errorf("outputs %+v", out)
	}
	if s.Metadata()["k"] != "v" {
		t.Errorf("metadata %v", s.Metadata())
	}
	x := []float32{1, 1, 1, 1, 2, 2, 2, 2} // N=1, C=2, 2×2: channel means 1 and 2
	res, err := s.Run(context.Background(), x, []int64{1, 2, 2, 2})
	if err != nil {
		t.Fatal(err)
	}
	want := []float32{1*1 + 2*4 + 0.5, 1*2 + 2*5, 1*3 + 2*6 - 0.5}
	for i, v := range res[0].Data {
		if v != want[i] {
			t.Fatalf("got %v, want %v", res[0].Data, want)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Run(context.Background(), x, []int64{1, 2, 2, 2}); err != ErrClosed {
		t.Errorf("run after close: %v", err)
	}
}
