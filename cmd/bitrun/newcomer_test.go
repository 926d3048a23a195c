package main

import (
	"encoding/json"
	"errors"
	"image"
	"image/color"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bitrun/bitrun/eval"
)

// TestWrongFileType (issue 13): a file given to the wrong flag says what it
// is and which flag takes it; a missing one says "no such file" (were
// "zip: not a valid zip file" and raw ONNX Runtime messages); inspect
// describes an ONNX model.
func TestWrongFileType(t *testing.T) {
	m := tinyModel(t)
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.onnx")
	img := filepath.Join(dir, "cat.png")
	writeTestPNG(t, img, color.Gray{Y: 9})
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"export", "--weights", m.onnx, "--out", filepath.Join(dir, "x.onnx")}, []string{"is an ONNX model", "use --onnx " + m.onnx}},
		{[]string{"eval", "--weights", m.onnx, "--data", dir, "--resolution", "32"}, []string{"is an ONNX model", "use --onnx"}},
		{[]string{"finetune", "--weights", m.onnx, "--data", dir, "--out", filepath.Join(dir, "r")}, []string{"is an ONNX model", "use --onnx"}},
		{[]string{"predict", "--onnx", m.npz, img}, []string{"is a .npz checkpoint", "use --weights " + m.npz}},
		{[]string{"eval", "--onnx", img, "--data", dir}, []string{"is an image, not a ONNX model"}},
		{[]string{"predict", "--onnx", missing, img}, []string{"--onnx", missing, "no such file"}},
		{[]string{"inspect", missing}, []string{missing, "no such file"}},
		{[]string{"inspect", img}, []string{"neither a .npz checkpoint nor an ONNX model"}},
	} {
		_, _, err := execCLI(t, c.args...)
		if err == nil {
			t.Errorf("%v: no error", c.args)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%v: %q lacks %q", c.args, err, w)
			}
		}
		if strings.Contains(err.Error(), "zip:") {
			t.Errorf("%v: raw zip error %q", c.args, err)
		}
	}
	out, _, err := execCLI(t, "inspect", m.onnx)
	if err != nil {
		t.Fatalf("inspect m.onnx: %v", err)
	}
	for _, w := range []string{"ONNX model", "input:", "float32", "output:", "bitrun.labels", "bitrun.resolution = 32"} {
		if !strings.Contains(out, w) {
			t.Errorf("inspect m.onnx lacks %q:\n%s", w, out)
		}
	}
	out, _, err = execCLI(t, "inspect", "--json", m.onnx)
	if err != nil {
		t.Fatal(err)
	}
	var r onnxReport
	if err := json.Unmarshal([]byte(out), &r); err != nil || len(r.Inputs) != 1 || len(r.Outputs) == 0 || r.Metadata["bitrun.classes"] != "10" {
		t.Errorf("inspect --json m.onnx: %+v, %v", r, err)
	}
}

// TestStateErrorsAndCommands (issue 13): state errors are not usage errors
// (no usage text, exit 1); unknown subcommands of a group fail with "did
// you mean"; --version works.
func TestStateErrorsAndCommands(t *testing.T) {
	m := tinyModel(t)
	dir := t.TempDir()
	two := writeTestFile(t, dir, "two.txt", "a\nb\n")
	_, _, err := execCLI(t, "export", "--weights", m.npz, "--out", filepath.Join(dir, "m.onnx"), "--labels", two)
	if err == nil || errors.As(err, new(usageError)) {
		t.Errorf("export with a wrong label count: %v, want a plain error", err)
	}
	_, _, err = execCLI(t, "zoo", "lsit")
	if !errors.As(err, new(usageError)) || !strings.Contains(err.Error(), "Did you mean this?") || !strings.Contains(err.Error(), "list") {
		t.Errorf("zoo lsit: %v", err)
	}
	out, _, err := execCLI(t, "--version")
	if err != nil || !strings.HasPrefix(out, "bitrun ") || !strings.Contains(out, "commit") {
		t.Errorf("--version: %q, %v", out, err)
	}
}

// TestEvalAndPredictChecks (issue 13): eval checks --plot before running,
// takes --split all on an image folder, warns when the dataset's class count
// differs from the model's; predict refuses a labels file of the wrong
// count and names itself in its errors.
func TestEvalAndPredictChecks(t *testing.T) {
	m := tinyModel(t)
	dir := t.TempDir()
	folder := filepath.Join(dir, "imgs")
	var files []string
	for c, class := range []string{"a", "b", "c"} {
		for i := range 4 {
			p := filepath.Join(folder, class, string(rune('0'+i))+".png")
			writeTestPNG(t, p, color.Gray{Y: uint8(60*c + 10*i)})
			files = append(files, p)
		}
	}
	_, _, err := execCLI(t, "eval", "--weights", m.npz, "--resolution", "32", "--data", folder, "--plot", filepath.Join(dir, "no", "such", "c.png"))
	if err == nil || !strings.Contains(err.Error(), "--plot") {
		t.Errorf("eval --plot in a missing folder: %v", err)
	}
	out, stderr, err := execCLI(t, "eval", "--weights", m.npz, "--resolution", "32", "--data", folder, "--split", "all", "--json")
	if err != nil {
		t.Fatalf("eval --split all: %v", err)
	}
	var rep eval.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil || rep.Images != int64(len(files)) {
		t.Errorf("eval --split all: %d images (%v), want %d", rep.Images, err, len(files))
	}
	if !strings.Contains(stderr, "the model has 10 classes, the dataset 3") {
		t.Errorf("no class-count warning: %q", stderr)
	}
	three := writeTestFile(t, dir, "three.txt", "x\ny\nz\n")
	_, _, err = execCLI(t, "predict", "--weights", m.npz, "--resolution", "32", "--labels", three, files[0])
	if err == nil || !strings.Contains(err.Error(), "3 labels, the model 10 classes") {
		t.Errorf("predict --labels of 3 for 10 classes: %v", err)
	}
	_, _, err = execCLI(t, "predict", "--weights", m.npz, files[0])
	if err == nil || !strings.HasPrefix(err.Error(), "predict: ") {
		t.Errorf("predict --weights without --resolution: %v, want a predict: error", err)
	}
}

func writeTestPNG(t *testing.T, path string, c color.Gray) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	img := image.NewGray(image.Rect(0, 0, 28, 28))
	for i := range img.Pix {
		img.Pix[i] = c.Y
	}
	writePNGFile(t, path, img)
}

// TestBenchONNXResolution (issue 13): bench --onnx feeds a bitrun export at
// its bitrun.resolution (was 128 for a 32-pixel model), as predict, eval
// and serve do; --resolution still wins.
func TestBenchONNXResolution(t *testing.T) {
	requireORTCLI(t)
	m := tinyModel(t)
	for _, c := range []struct {
		args []string
		want int
	}{
		{nil, 32},
		{[]string{"--resolution", "48"}, 48},
	} {
		out, _, err := execCLI(t, append([]string{"bench", "--onnx", m.onnx, "--runs", "1", "--warmup", "0", "--batch", "1", "--json"}, c.args...)...)
		if err != nil {
			t.Fatalf("bench %v: %v", c.args, err)
		}
		var r struct{ Resolution int }
		if err := json.Unmarshal([]byte(out), &r); err != nil || r.Resolution != c.want {
			t.Errorf("bench %v: resolution %d (%v), want %d", c.args, r.Resolution, err, c.want)
		}
	}
}

// TestZooOffline (issue 13): a pull with no network prints each retry once
// (the progress line, not also a slog warning) and ends saying how to go on
// offline; zoo import of a missing file says "no such file".
func TestZooOffline(t *testing.T) {
	cache := t.TempDir()
	_, stderr, err := execCLI(t, "zoo", "pull", "BiT-M-R50x1", "--cache-dir", cache,
		"--base-url", "http://127.0.0.1:1", "--max-attempts", "2")
	if err == nil {
		t.Fatal("pull from a closed port: no error")
	}
	for _, w := range []string{"--base-url", "bitrun zoo import FILE --name BiT-M-R50x1"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q lacks %q", err, w)
		}
	}
	if n := strings.Count(stderr, "attempt 1"); n != 1 {
		t.Errorf("retry printed %d times:\n%s", n, stderr)
	}
	if strings.Contains(stderr, "level=WARN") {
		t.Errorf("retry also logged as a warning:\n%s", stderr)
	}
	if left, _ := filepath.Glob(filepath.Join(cache, ".locks", "*")); len(left) != 0 {
		t.Errorf("lock files left behind: %v", left)
	}
	_, _, err = execCLI(t, "zoo", "import", filepath.Join(cache, "missing.npz"), "--name", "BiT-M-R50x1", "--cache-dir", cache)
	if err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("zoo import of a missing file: %v", err)
	}
}

// TestServeRunFolder (issue 13): serving a run folder's files names the
// model after the folder, and its weights keep the run's labels and
// resolution.
func TestServeRunFolder(t *testing.T) {
	for _, c := range []struct{ path, want string }{
		{"runs/fmnist/model.onnx", "fmnist"},
		{"runs/mnist/weights.npz", "mnist"},
		{"m.onnx", "m"},
		{"model.onnx", "model"},
	} {
		if got := defaultModelName(c.path); got != c.want {
			t.Errorf("defaultModelName(%q) = %q, want %q", c.path, got, c.want)
		}
	}
	m := tinyModel(t)
	run := t.TempDir()
	b, err := os.ReadFile(m.onnx)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(run, "model.onnx"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	res, labels := runFolderMeta(filepath.Join(run, "weights.npz"))
	if res != 32 || len(labels) != 10 || labels[0] != "T-shirt/top" {
		t.Errorf("run folder metadata: %d, %q", res, labels)
	}
	if res, labels := runFolderMeta(filepath.Join(t.TempDir(), "weights.npz")); res != 0 || labels != nil {
		t.Errorf("no run folder: %d, %q", res, labels)
	}
}

// TestEvalCorruptImageNamed (issue 13): one corrupt file in an image folder
// fails the evaluation naming the file.
func TestEvalCorruptImageNamed(t *testing.T) {
	m := tinyModel(t)
	folder := filepath.Join(t.TempDir(), "imgs")
	writeTestPNG(t, filepath.Join(folder, "a", "0.png"), color.Gray{Y: 5})
	bad := filepath.Join(folder, "b", "1.png")
	if err := os.MkdirAll(filepath.Dir(bad), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte("\x89PNG not really"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err := execCLI(t, "eval", "--weights", m.npz, "--resolution", "32", "--data", folder, "--split", "all")
	if err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("eval over a corrupt file: %v, want its path", err)
	}
}
