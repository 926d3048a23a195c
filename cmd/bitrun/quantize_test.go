package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bitrun/bitrun/export/onnxpb"
	"github.com/bitrun/bitrun/quantize"
	"github.com/bitrun/bitrun/zoo"
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

// TestQuantizeZooModel quantizes a --model zoo name (the test catalog's
// 10-class tiny checkpoint from a local server) calibrated and guarded on a
// 2-class image folder: the classes differ, so the automatic guard measures
// fp32/int8 agreement and the report and metadata say so. Offline without
// the checkpoint in the cache is an error that writes nothing.
func TestQuantizeZooModel(t *testing.T) {
	requireORTCLI(t)
	s := newZooTestServer(t)
	t.Setenv("BITRUN_ZOO_BASE_URL", s.url)
	cache, ds := t.TempDir(), writeShapesFolder(t)
	out := filepath.Join(t.TempDir(), "int8.onnx")
	args := []string{"quantize", "--model", "test-tiny", "--cache-dir", cache, "--data", ds, "--out", out,
		"--calibration", "8", "--batch", "4", "--threads", "1"}
	if _, _, err := execCLI(t, append(args, "--offline")...); !errors.Is(err, zoo.ErrOffline) {
		t.Fatalf("offline, not cached: err = %v", err)
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("OUT written without a model")
	}
	stdout, stderr, err := execCLI(t, args...)
	if err != nil {
		t.Fatalf("quantize --model: %v\n%s", err, stderr)
	}
	for _, want := range []string{"guard            agreement", "top-1 agreement", "top-5 agreement", "disagreement"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("report lacks %q:\n%s", want, stdout)
		}
	}
	if strings.Contains(stdout, "\nfp32 top-1") || strings.Contains(stdout, "\ndrop") {
		t.Errorf("top-1 against labels reported for a 10-class model on 2 classes:\n%s", stdout)
	}
	export := filepath.Join(cache, "test", "tiny.onnx")
	md, err := onnxpb.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	meta := md.Metadata()
	if sum, err := fileSHA256(t.Context(), export); err != nil || meta[quantize.MetaSourceModel] != sum {
		t.Errorf("source digest %s, the cached export's %s (%v)", meta[quantize.MetaSourceModel], sum, err)
	}
	if !strings.Contains(meta[quantize.MetaAccuracy], `"guard":"agreement"`) {
		t.Errorf("accuracy record %s", meta[quantize.MetaAccuracy])
	}
	// --guard labels refuses the 2-class dataset for the 10-class model.
	again := filepath.Join(t.TempDir(), "again.onnx")
	if _, _, err := execCLI(t, append(args[:len(args):len(args)], "--offline", "--guard", "labels", "--out", again)...); !errors.Is(err, quantize.ErrData) {
		t.Errorf("--guard labels on other classes: err = %v", err)
	}
	if _, err := os.Stat(again); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("OUT written for a refused dataset")
	}
}

// TestQuantizeUsage: bad flags are usage errors before anything is read.
func TestQuantizeUsage(t *testing.T) {
	for _, args := range [][]string{
		{"quantize", "--data", "d", "--out", "o"},
		{"quantize", "--onnx", "m", "--model", "BiT-M-R50x1", "--data", "d", "--out", "o"},
		{"quantize", "--onnx", "m", "--data", "d", "--out", "o", "--guard", "top5"},
		{"quantize", "--onnx", "m", "--out", "o"},
		{"quantize", "--onnx", "m", "--data", "d"},
		{"quantize", "--onnx", "m", "--data", "d", "--out", "o", "--calibrate", "entropy:2"},
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
