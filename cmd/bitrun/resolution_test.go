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
	} {
		_, _, err := execCLI(t, tc.args...)
		var ue usageError
		if err == nil || !errorsAs(err, &ue) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err %v, want a usage error %q", tc.args, err, tc.want)
		}
	}
}
