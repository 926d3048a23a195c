package main

import (
	"fmt"
	"os"
	"testing"
)

// TestConfigValueErrors (issue 12, item 14): a bad serve setting names the
// key, the bad value, where it came from (flag, environment variable,
// config file) and the allowed range (was: BITRUN_SERVE_MAX_BATCH=abc gave
// "--max-batch 16: out of range", the default, with no source).
func TestConfigValueErrors(t *testing.T) {
	dir := t.TempDir()
	model := writeTestFile(t, dir, "m.onnx", "not really")
	conf := writeTestFile(t, dir, "config.yaml", "serve:\n  timeout: forever\n")
	for _, tc := range []struct {
		env  map[string]string
		args []string
		want []string
	}{
		{map[string]string{"BITRUN_SERVE_MAX_BATCH": "abc"}, nil,
			[]string{"--max-batch", `"abc"`, "env BITRUN_SERVE_MAX_BATCH", "not an integer", "from 1 to 4096"}},
		{map[string]string{"BITRUN_SERVE_MAX_BATCH": "99999"}, nil,
			[]string{"--max-batch", `"99999"`, "env BITRUN_SERVE_MAX_BATCH", "out of range", "from 1 to 4096"}},
		{nil, []string{"--max-in-flight", "-3"},
			[]string{"--max-in-flight", `"-3"`, "flag --max-in-flight", "out of range", ">= 1"}},
		{map[string]string{"BITRUN_SERVE_BATCH_DELAY": "2h"}, nil,
			[]string{"--batch-delay", `"2h"`, "env BITRUN_SERVE_BATCH_DELAY", "out of range", "1m0s"}},
		{nil, []string{"--config", conf},
			[]string{"--timeout", `"forever"`, "config " + conf, "not a duration"}},
		{map[string]string{"BITRUN_SERVE_MAX_BODY": "lots"}, nil,
			[]string{"--max-body", `"lots"`, "env BITRUN_SERVE_MAX_BODY", "not a size"}},
		{nil, []string{"--body-timeout", "2h"},
			[]string{"--body-timeout", `"2h0m0s"`, "flag --body-timeout", "out of range"}},
		{nil, []string{"--max-queue-memory", "-5"},
			[]string{"--max-queue-memory", `"-5"`, "flag --max-queue-memory", "not a size", "256MiB"}},
		{nil, []string{"--max-decode-memory", "lots"},
			[]string{"--max-decode-memory", `"lots"`, "flag --max-decode-memory", "not a size", "512MiB"}},
		{nil, []string{"--max-body-memory", "0"},
			[]string{"--max-body-memory", `"0"`, "flag --max-body-memory", "not a size", "1GiB"}},
	} {
		for k, v := range tc.env {
			t.Setenv(k, v)
		}
		_, _, err := execCLI(t, append([]string{"serve", "--onnx", model}, tc.args...)...)
		wantUsage(t, fmt.Sprint(tc.env, " ", tc.args), err, tc.want...)
		for k := range tc.env {
			os.Unsetenv(k)
		}
	}
}
