package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bitrun/bitrun/export/onnxpb"
	"github.com/bitrun/bitrun/quantize"
)

// TestQuantizeCLI quantizes the tiny model from the command line and runs
// the int8 model through eval and predict unchanged.
func TestQuantizeCLI(t *testing.T) {
	requireORTCLI(t)
	if _, err := os.Stat(fashionDir); err != nil {
		t.Skipf("Fashion-MNIST not installed at %s: %v", fashionDir, err)
	}
	m := tinyModel(t)
	out := filepath.Join(t.TempDir(), "int8.onnx")
	stdout, stderr, err := execCLI(t, "quantize", "--onnx", m.onnx, "--data", fashionDir, "--out", out,
		"--calibration", "32", "--limit", "200", "--max-drop", "50", "--per-class", "--threads", "2")
	if err != nil {
		t.Fatalf("quantize: %v\n%s", err, stderr)
	}
	for _, want := range []string{"fp32 top-1", "int8 top-1", "drop", "Ankle boot"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("report lacks %q:\n%s", want, stdout)
		}
	}
	md, err := onnxpb.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if md.Metadata()[quantize.MetaQuantized] != quantize.QuantizedValue {
		t.Errorf("metadata %v", md.Metadata())
	}
	if stdout, stderr, err = execCLI(t, "eval", "--onnx", out, "--data", fashionDir, "--limit", "64"); err != nil || !strings.Contains(stdout, "top-1") {
		t.Fatalf("eval of the int8 model: %v\n%s%s", err, stdout, stderr)
	}
	// Refusals: an existing OUT without --force, the int8 model as input.
	if _, _, err := execCLI(t, "quantize", "--onnx", m.onnx, "--data", fashionDir, "--out", out); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("existing OUT: err = %v", err)
	}
	again := filepath.Join(t.TempDir(), "again.onnx")
	if _, _, err := execCLI(t, "quantize", "--onnx", out, "--data", fashionDir, "--out", again, "--max-drop", "-1"); !errors.Is(err, quantize.ErrQuantized) {
		t.Errorf("quantized input: err = %v", err)
	}
	if _, err := os.Stat(again); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("OUT written for a refused input")
	}
}

// TestQuantizeUsage: bad flags are usage errors before anything is read.
func TestQuantizeUsage(t *testing.T) {
	for _, args := range [][]string{
		{"quantize", "--data", "d", "--out", "o"},
		{"quantize", "--onnx", "m", "--out", "o"},
		{"quantize", "--onnx", "m", "--data", "d"},
		{"quantize", "--onnx", "m", "--data", "d", "--out", "o", "--calibrate", "entropy"},
		{"quantize", "--onnx", "m", "--data", "d", "--out", "o", "--head", "int4"},
		{"quantize", "--onnx", "m", "--data", "d", "--out", "o", "--calibration", "0"},
		{"quantize", "--onnx", "m", "--data", "d", "--out", "m"},
	} {
		_, _, err := execCLI(t, args...)
		var ue usageError
		if !errors.As(err, &ue) {
			t.Errorf("%v: err = %v, want a usage error", args, err)
		}
	}
}
