package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestResolutionRule: every command that takes --resolution applies the one
// rule (16..8192 pixels; 0 for the model's own where a model carries one)
// with the same message.
func TestResolutionRule(t *testing.T) {
	m := tinyModel(t)
	out := filepath.Join(t.TempDir(), "m.onnx")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"inspect", "--resolution", "9000", m.npz}, "--resolution 9000: want 16..8192 pixels"},
		{[]string{"bench", "--arch", "tiny", "--resolution", "8"}, "--resolution 8: want 16..8192 pixels"},
		{[]string{"bench", "--arch", "tiny", "--train", "--resolution", "9000"}, "--resolution 9000: want 16..8192 pixels"},
		{[]string{"export", "--weights", m.npz, "--out", out, "--resolution", "12"}, "--resolution 12: want 16..8192 pixels"},
		{[]string{"eval", "--weights", m.npz, "--data", fashionDir, "--resolution", "9000"}, "--resolution 9000: want 16..8192 pixels, or 0 for the model's own"},
		{[]string{"serve", "--weights", m.npz, "--resolution", "8"}, "--resolution 8: want 16..8192 pixels"},
	} {
		_, _, err := execCLI(t, tc.args...)
		var ue usageError
		if err == nil || !errorsAs(err, &ue) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err %v, want a usage error %q", tc.args, err, tc.want)
		}
	}
}

// A non-integer opset from the environment names its source (it was read
// as 0: "--opset 0 is not supported").
func TestExportOpsetFromEnv(t *testing.T) {
	m := tinyModel(t)
	t.Setenv("BITRUN_EXPORT_OPSET", "abc")
	_, _, err := execCLI(t, "export", "--weights", m.npz, "--out", filepath.Join(t.TempDir(), "m.onnx"))
	var ue usageError
	if err == nil || !errorsAs(err, &ue) || !strings.Contains(err.Error(), "env BITRUN_EXPORT_OPSET") || !strings.Contains(err.Error(), "not an integer") {
		t.Errorf("BITRUN_EXPORT_OPSET=abc: %v, want a usage error naming the variable", err)
	}
}
