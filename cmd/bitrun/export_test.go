package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bitrun/bitrun/export/meta"
	"github.com/bitrun/bitrun/export/onnxpb"
	"github.com/bitrun/bitrun/model"
	"github.com/bitrun/bitrun/nn"
	"github.com/bitrun/bitrun/runtime"
)

// runExportCLI runs `bitrun export ARGS` in-process with fresh configuration.
func runExportCLI(t *testing.T, args ...string) (stderr string, err error) {
	t.Helper()
	_, stderr, err = execCLI(t, append([]string{"export"}, args...)...)
	return stderr, err
}

// tinyCheckpoint writes a tiny checkpoint with a non-zero head and returns
// its path, config and params.
func tinyCheckpoint(t *testing.T, classes int) (string, model.Config, model.Params) {
	t.Helper()
	c, err := model.Arch("tiny", classes)
	if err != nil {
		t.Fatal(err)
	}
	params := model.Init(c, 3)
	for i := range params[model.HeadKernel].Data {
		params[model.HeadKernel].Data[i] = float32(math.Sin(float64(i)))
	}
	for i := range params[model.HeadBias].Data {
		params[model.HeadBias].Data[i] = float32(i) * 0.1
	}
	path := filepath.Join(t.TempDir(), "tiny.npz")
	if err := model.SaveNPZ(path, params); err != nil {
		t.Fatal(err)
	}
	return path, c, params
}

func TestExportCommand(t *testing.T) {
	npz, c, params := tinyCheckpoint(t, 3)
	dir := t.TempDir()
	labels := writeTestFile(t, dir, "labels.txt", "cat\ndog\r\nbird, small\n")
	out := filepath.Join(dir, "tiny.onnx")
	stderr, err := runExportCLI(t, "--weights", npz, "--out", out, "--labels", labels, "--resolution", "64")
	if err != nil {
		t.Fatalf("export: %v\n%s", err, stderr)
	}
	if !strings.Contains(stderr, "exported "+out) || !strings.Contains(stderr, "opset 17") {
		t.Errorf("summary: %q", stderr)
	}
	fh, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	h, err := onnxpb.ReadHeader(fh)
	fh.Close()
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(npz)
	sum := sha256.Sum256(raw)
	got, err := meta.Parse(h.Metadata())
	if err != nil {
		t.Fatal(err)
	}
	if got.SourceSHA != hex.EncodeToString(sum[:]) || got.Resolution != 64 || got.Arch != "tiny" ||
		strings.Join(got.Labels, "|") != "cat|dog|bird, small" || got.Version == "" {
		t.Errorf("metadata %+v", got)
	}

	// Refuses to overwrite without --force; --force with external data and opset 21.
	if _, err := runExportCLI(t, "--weights", npz, "--out", out); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Errorf("overwrite without --force: %v", err)
	}
	if stderr, err := runExportCLI(t, "--weights", npz, "--out", out, "--force", "--external-data", "always", "--opset", "21", "--trainable"); err != nil {
		t.Fatalf("export --force: %v\n%s", err, stderr)
	}
	if _, err := os.Stat(out + ".data"); err != nil {
		t.Errorf("external data file: %v", err)
	}

	// The exported file runs and matches the native engine.
	requireORTCLI(t)
	p, err := runtime.Open(out, runtime.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	x := nn.New(2, 3, 48, 48)
	for i := range x.Data {
		x.Data[i] = float32(math.Cos(float64(i) * 0.37))
	}
	res, err := p.Run(context.Background(), x.Data, []int64{2, 3, 48, 48})
	if err != nil {
		t.Fatal(err)
	}
	m, _ := model.New(c, params)
	want, _ := m.Forward(x)
	for i, v := range want.Data {
		if d := math.Abs(float64(res["logits"].Data[i] - v)); d > 1e-3 {
			t.Fatalf("logit %d: ORT %g native %g", i, res["logits"].Data[i], v)
		}
	}
}

func TestExportCommandErrors(t *testing.T) {
	npz, _, _ := tinyCheckpoint(t, 3)
	dir := t.TempDir()
	two := writeTestFile(t, dir, "two.txt", "a\nb\n")
	bad := writeTestFile(t, dir, "bad.json", `["a", 1]`)
	out := filepath.Join(dir, "m.onnx")
	cases := []struct {
		name  string
		args  []string
		usage bool
		msg   string
	}{
		{"no weights", []string{"--out", out}, true, "--weights"},
		{"no out", []string{"--weights", npz}, true, "--out"},
		{"labels count", []string{"--weights", npz, "--out", out, "--labels", two}, false, "2 labels but"}, // a state error (issue 13)
		{"opset", []string{"--weights", npz, "--out", out, "--opset", "13"}, true, "--opset 13"},
		{"external mode", []string{"--weights", npz, "--out", out, "--external-data", "maybe"}, true, "--external-data"},
		{"resolution", []string{"--weights", npz, "--out", out, "--resolution", "0"}, true, "--resolution"},
		{"missing weights", []string{"--weights", filepath.Join(dir, "nope.npz"), "--out", out}, false, "nope.npz"},
		{"missing labels", []string{"--weights", npz, "--out", out, "--labels", filepath.Join(dir, "nope.txt")}, false, "nope.txt"},
		{"malformed labels", []string{"--weights", npz, "--out", out, "--labels", bad}, false, "--labels " + bad + ": "}, // the file's text: a state error too
	}
	for _, c := range cases {
		_, err := runExportCLI(t, c.args...)
		var ue usageError
		if err == nil || errors.As(err, &ue) != c.usage || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: error %v (usage %v), want usage=%v containing %q", c.name, err, errors.As(err, &ue), c.usage, c.msg)
		}
		if _, statErr := os.Stat(out); statErr == nil {
			t.Fatalf("%s: wrote %s despite the error", c.name, out)
		}
	}
}
