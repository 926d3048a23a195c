package main

import (
	"fmt"
	"image/color"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestConfigChecksEveryCommand (issue 13): bad values of every command's
// settings are usage errors naming the key, the value, its source and what
// is allowed, not silently zero (BITRUN_ORT_THREADS=abc was ignored,
// --log-level verbose accepted).
func TestConfigChecksEveryCommand(t *testing.T) {
	dir := t.TempDir()
	m := tinyModel(t)
	writeTestPNG(t, filepath.Join(dir, "imgs", "a", "0.png"), color.Gray{Y: 1})
	imgs := filepath.Join(dir, "imgs")
	for _, tc := range []struct {
		env  map[string]string
		args []string
		want []string
	}{
		{map[string]string{"BITRUN_ORT_THREADS": "abc"}, []string{"eval", "--onnx", m.onnx, "--data", imgs, "--split", "all"},
			[]string{"--threads", `"abc"`, "env BITRUN_ORT_THREADS", "not an integer", "from 0 to 1024"}},
		{map[string]string{"BITRUN_ORT_PROVIDER": "tpu"}, []string{"eval", "--onnx", m.onnx, "--data", imgs, "--split", "all"},
			[]string{"--provider", `"tpu"`, "env BITRUN_ORT_PROVIDER", "cpu, cuda, auto"}},
		{nil, []string{"--log-level", "verbose", "zoo", "list"},
			[]string{"--log-level", `"verbose"`, "flag --log-level", "debug, info, warn, error"}},
		{map[string]string{"BITRUN_LOG_LEVEL": "loud"}, []string{"zoo", "list"},
			[]string{"--log-level", `"loud"`, "env BITRUN_LOG_LEVEL"}},
		{map[string]string{"BITRUN_TRAIN_BATCH": "x"}, []string{"train", "--data", dir, "--out", filepath.Join(dir, "r")},
			[]string{"--batch", `"x"`, "env BITRUN_TRAIN_BATCH", "not an integer"}},
		{nil, []string{"train", "--data", dir, "--out", filepath.Join(dir, "r"), "--resolution", "9000"},
			[]string{"--resolution", `"9000"`, "out of range", "from 16 to 8192"}},
		{map[string]string{"BITRUN_FINETUNE_TRAIN": "most"}, []string{"finetune", "--data", dir, "--weights", "w.npz", "--out", filepath.Join(dir, "f")},
			[]string{"--train", `"most"`, "env BITRUN_FINETUNE_TRAIN", "full, head"}},
		{map[string]string{"BITRUN_FINETUNE_SEED": "-1"}, []string{"finetune", "--data", dir, "--weights", "w.npz", "--out", filepath.Join(dir, "f")},
			[]string{"--seed", `"-1"`, "not an unsigned integer"}},
		{map[string]string{"BITRUN_ZOO_OFFLINE": "maybe"}, []string{"zoo", "pull", "BiT-M-R50x1"},
			[]string{"--offline", `"maybe"`, "env BITRUN_ZOO_OFFLINE", "true or false"}},
	} {
		for k, v := range tc.env {
			t.Setenv(k, v)
		}
		_, _, err := execCLI(t, tc.args...)
		wantUsage(t, fmt.Sprint(tc.env, " ", tc.args), err, tc.want...)
		for k := range tc.env {
			os.Unsetenv(k)
		}
	}
}

// TestConfigShow (issue 13): config show names the file in use, lists every
// command's keys (eval, predict, bench included), the log level, GEMM and
// JPEG, each with one source; unknown keys in the file are warned about.
func TestConfigShow(t *testing.T) {
	conf := writeTestFile(t, t.TempDir(), "config.yaml", "train:\n  batch: 64\n  bacth: 3\nserv:\n  addr: x\n")
	t.Setenv("BITRUN_EXPORT_OPSET", "18")
	out, stderr, err := execCLI(t, "config", "show", "--config", conf)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"config file: " + conf + " (flag --config; read)", "train.bacth", "serv.addr",
		"log.level", "train.batch", "export.opset", "gemm", "jpeg", "BITRUN_GEMM", "BITRUN_JPEG"} {
		if !strings.Contains(out, w) {
			t.Errorf("config show lacks %q:\n%s", w, out)
		}
	}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) > 0 && f[0] == "train.batch":
			if f[1] != "64" || !strings.Contains(line, "config file") || strings.Contains(line, conf) {
				t.Errorf("train.batch line: %q", line)
			}
		case len(f) > 0 && f[0] == "export.opset":
			if f[1] != "18" || !strings.Contains(line, "env BITRUN_EXPORT_OPSET") {
				t.Errorf("export.opset line: %q", line)
			}
		}
	}
	if !strings.Contains(stderr, "unknown keys ignored: serv.addr, train.bacth") {
		t.Errorf("no warning about unknown keys: %q", stderr)
	}
	for _, k := range []string{"eval.", "predict.", "bench."} {
		if !strings.Contains(out, "\n"+k) {
			t.Errorf("config show lists no %s keys", k)
		}
	}
}
