package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/bitrun/bitrun/data"
	"github.com/bitrun/bitrun/eval"
	"github.com/bitrun/bitrun/export"
	"github.com/bitrun/bitrun/internal/ort/onnxtest"
	"github.com/bitrun/bitrun/internal/testmodel"
	"github.com/bitrun/bitrun/model"
	"github.com/bitrun/bitrun/runtime"
)

const fashionDir = "/usr/share/datasets/fashion-mnist"

// requireORTCLI skips (fails under BITRUN_REQUIRE_ORT=1) without ONNX Runtime.
func requireORTCLI(t *testing.T) {
	t.Helper()
	_, err := runtime.Version(runtime.Options{})
	onnxtest.Require(t, err)
}

type tinyFiles struct{ npz, onnx string }

var (
	tinyOnce sync.Once
	tinyDir  string
	tinyErr  error
)

// tinyModel writes (once per test binary) a tiny BiT with 10 classes and a
// random (non-zero) head as .npz and as ONNX exported at 32×32 with the
// Fashion-MNIST labels.
func tinyModel(t *testing.T) tinyFiles {
	t.Helper()
	tinyOnce.Do(func() {
		tinyDir, tinyErr = os.MkdirTemp("", "bitrun-cli-test")
		if tinyErr != nil {
			return
		}
		cfg, params, err := testmodel.Tiny(10, 7, 0.5)
		if err != nil {
			tinyErr = err
			return
		}
		if tinyErr = model.SaveNPZ(filepath.Join(tinyDir, "tiny.npz"), params); tinyErr != nil {
			return
		}
		_, tinyErr = export.Export(context.Background(), filepath.Join(tinyDir, "tiny.onnx"), cfg, params,
			export.Options{Resolution: 32, Labels: data.FashionMNISTClasses})
	})
	if tinyErr != nil {
		t.Fatalf("making the tiny model: %v", tinyErr)
	}
	return tinyFiles{npz: filepath.Join(tinyDir, "tiny.npz"), onnx: filepath.Join(tinyDir, "tiny.onnx")}
}

func TestMain(m *testing.M) {
	code := m.Run()
	if tinyDir != "" {
		os.RemoveAll(tinyDir)
	}
	os.Exit(code)
}

func requireFashion(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(fashionDir, "t10k-images-idx3-ubyte.gz")); err != nil {
		t.Skipf("Fashion-MNIST not installed at %s (make setup installs it): %v", fashionDir, err)
	}
}

// TestEvalONNXMatchesNative evaluates the same tiny model exported to ONNX
// (ONNX Runtime) and as .npz (native engine) on the Fashion-MNIST test split:
// the accuracies must agree within 0.1 points.
func TestEvalONNXMatchesNative(t *testing.T) {
	requireORTCLI(t)
	requireFashion(t)
	m := tinyModel(t)
	limit := "0"
	if testing.Short() {
		limit = "500"
	}
	plot := filepath.Join(t.TempDir(), "confusion.png")
	outO, _, err := execCLI(t, "eval", "--onnx", m.onnx, "--data", fashionDir, "--limit", limit, "--json", "--plot", plot, "--threads", "2")
	if err != nil {
		t.Fatalf("eval --onnx: %v", err)
	}
	outN, _, err := execCLI(t, "eval", "--weights", m.npz, "--data", fashionDir, "--resolution", "32", "--limit", limit, "--json")
	if err != nil {
		t.Fatalf("eval --weights: %v", err)
	}
	var ro, rn eval.Report
	if err := json.Unmarshal([]byte(outO), &ro); err != nil {
		t.Fatalf("onnx JSON: %v\n%s", err, outO)
	}
	if err := json.Unmarshal([]byte(outN), &rn); err != nil {
		t.Fatalf("native JSON: %v\n%s", err, outN)
	}
	want := int64(10000)
	if testing.Short() {
		want = 500
	}
	if ro.Images != want || rn.Images != want {
		t.Fatalf("images: onnx %d native %d, want %d", ro.Images, rn.Images, want)
	}
	t.Logf("top-1: onnx %.2f%% native %.2f%%; top-5: onnx %.2f%% native %.2f%%; images/s onnx %.0f native %.0f",
		100*ro.Top1, 100*rn.Top1, 100*ro.TopK, 100*rn.TopK, ro.Timing.ImagesPerSec, rn.Timing.ImagesPerSec)
	if d := math.Abs(float64(ro.Top1 - rn.Top1)); d > 0.001 {
		t.Errorf("top-1 differs by %.3f points: onnx %v native %v", 100*d, ro.Top1, rn.Top1)
	}
	if d := math.Abs(float64(ro.TopK - rn.TopK)); d > 0.001 {
		t.Errorf("top-5 differs by %.3f points", 100*d)
	}
	// A random model must not collapse to one class, or the parity says little.
	predicted := 0
	for j := range ro.Confusion[0] {
		var col int64
		for i := range ro.Confusion {
			col += ro.Confusion[i][j]
		}
		if col > 0 {
			predicted++
		}
	}
	if predicted < 2 {
		t.Errorf("the test model predicts %d distinct classes; parity is vacuous", predicted)
	}
	if ro.Preprocess.Size != 32 || ro.Preprocess.Channels != 3 || ro.Labels[0] != data.FashionMNISTClasses[0] {
		t.Errorf("onnx preprocessing %+v labels %v: want 32×32×3 from metadata", ro.Preprocess, ro.Labels)
	}
	f, err := os.Open(plot)
	if err != nil {
		t.Fatalf("--plot: %v", err)
	}
	defer f.Close()
	if _, err := png.Decode(f); err != nil {
		t.Errorf("--plot wrote no PNG: %v", err)
	}

	// The text table mentions the headline numbers.
	text, _, err := execCLI(t, "eval", "--onnx", m.onnx, "--data", fashionDir, "--limit", "64", "--batch", "16")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"top-1:", "top-5:", "per-class accuracy", "confusion matrix", "T-shirt/top", "images/s"} {
		if !strings.Contains(text, s) {
			t.Errorf("text report lacks %q:\n%s", s, text)
		}
	}
}

func TestPredict(t *testing.T) {
	requireORTCLI(t)
	requireFashion(t)
	m := tinyModel(t)
	ds, err := data.Open(fashionDir, "test")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var files []string
	for i := range 3 {
		img, err := ds.Image(i)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, writePNG(t, dir, i, img))
	}
	outO, _, err := execCLI(t, append([]string{"predict", "--onnx", m.onnx, "--json", "--top-k", "3", "--batch", "2"}, files...)...)
	if err != nil {
		t.Fatalf("predict --onnx: %v", err)
	}
	outN, _, err := execCLI(t, append([]string{"predict", "--weights", m.npz, "--resolution", "32", "--json", "--top-k", "3"}, files...)...)
	if err != nil {
		t.Fatalf("predict --weights: %v", err)
	}
	var po, pn []prediction
	if err := json.Unmarshal([]byte(outO), &po); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(outN), &pn); err != nil {
		t.Fatal(err)
	}
	if len(po) != 3 || len(pn) != 3 {
		t.Fatalf("got %d and %d predictions, want 3", len(po), len(pn))
	}
	for i := range po {
		if po[i].Image != files[i] || len(po[i].Top) != 3 {
			t.Fatalf("prediction %d: %+v", i, po[i])
		}
		sum := 0.0
		for r, c := range po[i].Top {
			if c.Label != data.FashionMNISTClasses[c.Index] {
				t.Errorf("label %q for index %d", c.Label, c.Index)
			}
			if r > 0 && c.Score > po[i].Top[r-1].Score {
				t.Errorf("scores not descending: %+v", po[i].Top)
			}
			if math.Abs(c.Score-pn[i].Top[r].Score) > 1e-3 || c.Index != pn[i].Top[r].Index {
				t.Errorf("image %d rank %d: onnx %+v native %+v", i, r, c, pn[i].Top[r])
			}
			sum += c.Score
		}
		if sum <= 0 || sum > 1+1e-6 {
			t.Errorf("top-3 probabilities sum to %v", sum)
		}
	}
	text, _, err := execCLI(t, "predict", "--onnx", m.onnx, files[0])
	if err != nil || !strings.Contains(text, files[0]) || !strings.Contains(text, "5. ") {
		t.Errorf("text predict: %v\n%s", err, text)
	}
	// An undecodable file is an error naming it.
	bad := writeTestFile(t, dir, "bad.png", "not an image")
	if _, _, err := execCLI(t, "predict", "--onnx", m.onnx, bad); err == nil || !strings.Contains(err.Error(), "bad.png") {
		t.Errorf("bad image: err = %v", err)
	}
}

// writePNG writes img as dir/imgI.png and returns the path.
func writePNG(t *testing.T, dir string, i int, img image.Image) string {
	t.Helper()
	path := filepath.Join(dir, "img"+string(rune('0'+i))+".png")
	writePNGFile(t, path, img)
	return path
}

func TestBench(t *testing.T) {
	requireORTCLI(t)
	m := tinyModel(t)
	for _, args := range [][]string{
		{"--onnx", m.onnx, "--threads", "1"},
		{"--onnx", m.onnx, "--ort-spin"},
		{"--weights", m.npz},
	} {
		out, _, err := execCLI(t, append([]string{"bench", "--resolution", "32", "--batch", "2", "--runs", "5", "--warmup", "1", "--json"}, args...)...)
		if err != nil {
			t.Fatalf("bench %v: %v", args, err)
		}
		var r benchResult
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatal(err)
		}
		if r.Runs != 5 || r.Batch != 2 || r.Resolution != 32 || r.Channels != 3 {
			t.Errorf("bench %v: %+v", args, r)
		}
		b := r.BatchMs
		if !(b.P10 > 0 && b.P10 <= b.Median && b.Median <= b.P90) {
			t.Errorf("bench %v: batch ms not ordered: %+v", args, b)
		}
		if r.CPUMsPerImage < 0 {
			t.Errorf("bench %v: negative CPU time: %+v", args, r)
		}
		if math.Abs(r.ImagesPerS.Median-2000/b.Median) > 1e-6*r.ImagesPerS.Median || math.Abs(r.ImageMs.Median-b.Median/2) > 1e-9 {
			t.Errorf("bench %v: derived figures inconsistent: %+v", args, r)
		}
	}
	// --streams: every stream's runs are timed and counted.
	out, _, err := execCLI(t, "bench", "--onnx", m.onnx, "--resolution", "32", "--batch", "2", "--runs", "4", "--warmup", "1", "--streams", "3", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var r benchResult
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	if r.Streams != 3 || r.Seconds <= 0 || math.Abs(r.Throughput-3*4*2/r.Seconds) > 1e-6*r.Throughput {
		t.Errorf("bench --streams 3: %+v", r)
	}
	if !strings.Contains(r.Detail, "3 streams") {
		t.Errorf("bench --streams 3: detail %q does not say so", r.Detail)
	}
	text, _, err := execCLI(t, "bench", "--onnx", m.onnx, "--resolution", "32", "--batch", "1", "--runs", "2", "--warmup", "0")
	if err != nil || !strings.Contains(text, "images/s") || !strings.Contains(text, "ms median") {
		t.Errorf("text bench: %v\n%s", err, text)
	}
}

func TestORTCLIErrors(t *testing.T) {
	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"eval", "--onnx", "m.onnx"}, exitUsage, "--data"},
		{[]string{"eval", "--data", fashionDir}, exitUsage, "give a model"},
		{[]string{"eval", "--onnx", "m.onnx", "--weights", "w.npz", "--data", fashionDir}, exitUsage, "exclusive"},
		{[]string{"bench", "--onnx", "m.onnx", "--provider", "tpu"}, exitUsage, "tpu"},
		{[]string{"bench", "--onnx", "m.onnx", "--runs", "0"}, exitUsage, "--runs"},
		{[]string{"bench", "--onnx", "m.onnx", "--streams", "0"}, exitUsage, "--streams"},
		{[]string{"bench", "--weights", "w.npz", "--streams", "2"}, exitUsage, "--streams applies to --onnx"},
		{[]string{"predict", "--onnx", "m.onnx"}, exitUsage, "requires at least 1 arg"},
		{[]string{"predict", "--onnx", "m.onnx", "--top-k", "0", "x.png"}, exitUsage, "--top-k"},
	}
	if cgoEnabled() {
		cases = append(cases, struct {
			args []string
			code int
			want string
		}{[]string{"bench", "--onnx", "m.onnx", "--ort-lib", "/nonexistent/libonnxruntime.so"}, exitFailure, "make setup"})
	} else {
		cases = append(cases, struct {
			args []string
			code int
			want string
		}{[]string{"bench", "--onnx", "m.onnx"}, exitFailure, "CGO_ENABLED=1"})
	}
	for _, tc := range cases {
		_, _, err := execCLI(t, tc.args...)
		if err == nil {
			t.Errorf("%v: no error", tc.args)
			continue
		}
		var ue usageError
		code := exitFailure
		if errorsAs(err, &ue) || isCobraArgError(err) {
			code = exitUsage
		}
		if code != tc.code || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: exit %d err %q; want exit %d mentioning %q", tc.args, code, err, tc.code, tc.want)
		}
	}
}

func TestVersionShowsORT(t *testing.T) {
	out, _, err := execCLI(t, "version")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "onnxruntime: ") {
		t.Fatalf("version lacks the onnxruntime line:\n%s", out)
	}
	if _, verr := runtime.Version(runtime.Options{}); verr == nil && !strings.Contains(out, "onnxruntime: 1.24.") {
		t.Errorf("ORT loads but version says:\n%s", out)
	}
	// A library that cannot load reports why instead of failing.
	t.Setenv("BITRUN_ORT_LIB", "/nonexistent/libonnxruntime.so")
	out, _, err = execCLI(t, "version")
	if err != nil {
		t.Fatalf("version failed with a missing library: %v", err)
	}
	if !strings.Contains(out, "onnxruntime: unavailable: ") || (cgoEnabled() && !strings.Contains(out, "make setup")) {
		t.Errorf("missing library not reported:\n%s", out)
	}
}

// cgoEnabled reports whether this binary can load ONNX Runtime at all.
func cgoEnabled() bool {
	_, err := runtime.Version(runtime.Options{LibraryPath: "/nonexistent/libonnxruntime.so"})
	return !strings.Contains(fmt.Sprint(err), "CGO_ENABLED=1")
}

func errorsAs(err error, target any) bool { return errors.As(err, target) }
