package runtime

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/bitrun/bitrun/internal/ort"
	"github.com/bitrun/bitrun/internal/ort/onnxtest"
)

// requireORT skips (or fails under BITRUN_REQUIRE_ORT=1) when ONNX Runtime
// cannot be loaded.
func requireORT(t testing.TB) {
	t.Helper()
	_, err := Version(Options{})
	onnxtest.Require(t, err)
}

func randSlice(rng *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(rng.NormFloat64())
	}
	return s
}

func testClassifier(seed uint64, shape []int64) onnxtest.Classifier {
	rng := rand.New(rand.NewPCG(seed, 1))
	return onnxtest.Classifier{C: 3, K: 4, W: randSlice(rng, 12), B: randSlice(rng, 4), Shape: shape,
		Metadata: map[string]string{"bitrun.resolution": "8", "bitrun.labels": "a,b,c,d"}}
}

func openClassifier(t testing.TB, c onnxtest.Classifier, opts Options) *Predictor {
	t.Helper()
	requireORT(t)
	path, err := c.Model().Write(t.TempDir(), "m.onnx")
	if err != nil {
		t.Fatal(err)
	}
	p, err := Open(path, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func assertClose(t testing.TB, got, want []float32, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d values, want %d", len(got), len(want))
	}
	for i := range got {
		if math.Abs(float64(got[i]-want[i])) > tol {
			t.Fatalf("value %d: got %v want %v (tol %g)", i, got[i], want[i], tol)
		}
	}
}

func TestRunKnownGraph(t *testing.T) {
	c := testClassifier(1, nil)
	p := openClassifier(t, c, Options{IntraThreads: 1})
	info := p.Info()
	if info.Input != "pixels" || fmt.Sprint(info.Shape) != "[-1 3 -1 -1]" {
		t.Errorf("info input %q %v, want pixels [-1 3 -1 -1]", info.Input, info.Shape)
	}
	if len(info.Outputs) != 1 || info.Outputs[0] != "logits" {
		t.Errorf("outputs %v, want [logits]", info.Outputs)
	}
	if info.Metadata["bitrun.labels"] != "a,b,c,d" || info.Metadata["bitrun.resolution"] != "8" {
		t.Errorf("metadata %v", info.Metadata)
	}
	if info.Provider != ProviderCPU {
		t.Errorf("provider %q, want cpu", info.Provider)
	}
	rng := rand.New(rand.NewPCG(2, 2))
	// Dynamic batch and spatial size: each call may use a different shape.
	for _, s := range [][3]int{{1, 4, 4}, {2, 5, 7}, {3, 2, 2}, {8, 16, 16}} {
		n, h, w := s[0], s[1], s[2]
		x := randSlice(rng, n*3*h*w)
		out, err := p.Run(context.Background(), x, []int64{int64(n), 3, int64(h), int64(w)})
		if err != nil {
			t.Fatalf("Run %v: %v", s, err)
		}
		o, ok := out["logits"]
		if !ok {
			t.Fatalf("no logits in %v", out)
		}
		if fmt.Sprint(o.Shape) != fmt.Sprint([]int64{int64(n), 4}) {
			t.Fatalf("shape %v, want [%d 4]", o.Shape, n)
		}
		assertClose(t, o.Data, c.Forward(x, n, h, w), 1e-4)
	}
}

func TestConcurrentRun(t *testing.T) {
	for _, sessions := range []int{1, 3} {
		t.Run(fmt.Sprintf("sessions=%d", sessions), func(t *testing.T) {
			testConcurrentRun(t, Options{Sessions: sessions})
		})
	}
}

func testConcurrentRun(t *testing.T, opts Options) {
	c := testClassifier(3, nil)
	p := openClassifier(t, c, opts)
	const workers, runs = 12, 15
	var wg sync.WaitGroup
	for g := range workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 9))
			for r := range runs {
				n, hw := 1+r%4, 3+g%5
				x := randSlice(rng, n*3*hw*hw)
				out, err := p.Run(context.Background(), x, []int64{int64(n), 3, int64(hw), int64(hw)})
				if err != nil {
					t.Error(err)
					return
				}
				want := c.Forward(x, n, hw, hw)
				got := out["logits"].Data
				for i := range want {
					if math.Abs(float64(got[i]-want[i])) > 1e-4 {
						t.Errorf("goroutine %d run %d value %d: got %v want %v", g, r, i, got[i], want[i])
						return
					}
				}
			}
		})
	}
	wg.Wait()
}

func TestBadInput(t *testing.T) {
	fixed := openClassifier(t, testClassifier(4, []int64{2, 3, 4, 4}), Options{})
	dynamic := openClassifier(t, testClassifier(4, nil), Options{})
	cases := []struct {
		name  string
		p     *Predictor
		shape []int64
		n     int
		want  string
	}{
		{"rank", fixed, []int64{3, 4, 4}, 48, "rank 3"},
		{"channels", fixed, []int64{2, 1, 4, 4}, 32, "channels is 1"},
		{"height", fixed, []int64{2, 3, 5, 4}, 120, "height is 5"},
		{"width", fixed, []int64{2, 3, 4, 8}, 96, "width is 8"},
		{"batch", fixed, []int64{1, 3, 4, 4}, 48, "batch is 1"},
		{"length", fixed, []int64{2, 3, 4, 4}, 95, "95 values"},
		{"dynamic channels", dynamic, []int64{1, 4, 4, 4}, 64, "channels is 4"},
		{"zero dim", dynamic, []int64{0, 3, 4, 4}, 0, "must be positive"},
		{"negative dim", dynamic, []int64{1, 3, -4, 4}, 0, "must be positive"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.p.Run(context.Background(), make([]float32, tc.n), tc.shape)
			if !errors.Is(err, ErrBadInput) {
				t.Fatalf("err = %v, want ErrBadInput", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err %q does not mention %q", err, tc.want)
			}
		})
	}
	if _, err := fixed.Run(context.Background(), make([]float32, 96), []int64{2, 3, 4, 4}); err != nil {
		t.Errorf("matching shape: %v", err)
	}
}

func TestMissingLibrary(t *testing.T) {
	missing := t.TempDir() + "/nowhere/libonnxruntime.so"
	_, err := Open("model.onnx", Options{LibraryPath: missing})
	if errors.Is(err, ort.ErrNoCgo) {
		t.Skipf("built without cgo, so no library is ever loaded: %v", err)
	}
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Open err = %v, want ErrUnavailable", err)
	}
	for _, s := range []string{"make setup", "BITRUN_ORT_LIB", missing} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not mention %q", err, s)
		}
	}
	if _, err := Version(Options{LibraryPath: missing}); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Version err = %v, want ErrUnavailable", err)
	}
}

func TestProviderAutoFallsBack(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c := testClassifier(5, nil)
	p := openClassifier(t, c, Options{Provider: "auto", Logger: log})
	switch p.Info().Provider {
	case ProviderCPU:
		// No usable CUDA here: the fallback must be logged with its reason.
		if !strings.Contains(logs.String(), "falling back to CPU") || !strings.Contains(logs.String(), "reason=") {
			t.Errorf("auto fell back to CPU without logging why; log:\n%s", logs.String())
		}
		t.Logf("fallback log: %s", strings.TrimSpace(logs.String()))
		// Asking for CUDA explicitly must then fail with a clear error.
		path, _ := c.Model().Write(t.TempDir(), "m.onnx")
		if q, err := Open(path, Options{Provider: "cuda"}); err == nil {
			q.Close()
			t.Errorf("provider cuda opened although auto fell back to CPU")
		} else if !strings.Contains(strings.ToLower(err.Error()), "cuda") {
			t.Errorf("cuda error %q does not mention cuda", err)
		}
	case ProviderCUDA:
		t.Logf("CUDA available; auto chose it")
	default:
		t.Fatalf("provider %q", p.Info().Provider)
	}
	x := make([]float32, 3*4*4)
	if _, err := p.Run(context.Background(), x, []int64{1, 3, 4, 4}); err != nil {
		t.Fatalf("Run after auto: %v", err)
	}
}

func TestOptionErrors(t *testing.T) {
	if _, err := Open("m.onnx", Options{Provider: "tpu"}); err == nil || !strings.Contains(err.Error(), "tpu") {
		t.Errorf("unknown provider: err = %v", err)
	}
	if _, err := Open("m.onnx", Options{IntraThreads: -1}); err == nil {
		t.Errorf("negative threads accepted")
	}
	requireORT(t)
	if _, err := Open(t.TempDir()+"/missing.onnx", Options{}); err == nil || !strings.Contains(err.Error(), "missing.onnx") {
		t.Errorf("missing model: err = %v", err)
	}
	bad := t.TempDir() + "/bad.onnx"
	os.WriteFile(bad, []byte("not a model"), 0o644)
	if _, err := Open(bad, Options{}); err == nil {
		t.Errorf("garbage model opened")
	}
}

func TestUnsupportedModel(t *testing.T) {
	requireORT(t)
	m := onnxtest.Model{
		Nodes:   []onnxtest.Node{{Op: "Add", Inputs: []string{"a", "b"}, Outputs: []string{"y"}}},
		Inputs:  []onnxtest.Value{{Name: "a", Shape: []int64{2}}, {Name: "b", Shape: []int64{2}}},
		Outputs: []onnxtest.Value{{Name: "y", Shape: []int64{2}}},
	}
	path, err := m.Write(t.TempDir(), "two.onnx")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path, Options{}); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("two-input model: err = %v, want ErrUnsupported", err)
	}
}

func TestCloseAndCancel(t *testing.T) {
	p := openClassifier(t, testClassifier(6, nil), Options{})
	x := make([]float32, 3*2*2)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := p.Run(ctx, x, []int64{1, 3, 2, 2}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled run: err = %v, want context.Canceled", err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := p.Run(context.Background(), x, []int64{1, 3, 2, 2}); !errors.Is(err, ErrClosed) {
		t.Errorf("run after close: err = %v, want ErrClosed", err)
	}
}

func TestSessionConfig(t *testing.T) {
	c := testClassifier(8, nil)
	p := openClassifier(t, c, Options{SessionConfig: map[string]string{"session.intra_op.allow_spinning": "0"}})
	x := make([]float32, 3*2*2)
	if _, err := p.Run(context.Background(), x, []int64{1, 3, 2, 2}); err != nil {
		t.Fatal(err)
	}
}

func TestForConcurrentRuns(t *testing.T) {
	for _, tc := range []struct {
		name         string
		in           Options
		n, cores     int
		threads, ses int
	}{
		{"one run unchanged", Options{}, 1, 16, 0, 0},
		{"2 runs on 2 cores share a 1-thread session", Options{}, 2, 2, 1, 0},
		{"2 runs on 16 cores: 8 threads, own sessions", Options{}, 2, 16, 8, 2},
		{"more runs than cores: 1 thread", Options{}, 4, 2, 1, 0},
		{"explicit threads kept", Options{IntraThreads: 3}, 2, 16, 3, 2},
		{"explicit sessions kept", Options{Sessions: 1}, 2, 16, 8, 1},
		{"cuda unchanged", Options{Provider: ProviderCUDA}, 2, 16, 0, 0},
	} {
		got := tc.in.ForConcurrentRuns(tc.n, tc.cores)
		if got.IntraThreads != tc.threads || got.Sessions != tc.ses {
			t.Errorf("%s: threads %d sessions %d, want %d and %d", tc.name, got.IntraThreads, got.Sessions, tc.threads, tc.ses)
		}
	}
}

func TestOnCPU(t *testing.T) {
	for p, want := range map[string]bool{"": true, "cpu": true, " CPU ": true, "cuda": false, "auto": false} {
		if got := (Options{Provider: p}).OnCPU(); got != want {
			t.Errorf("Provider %q: OnCPU %v, want %v", p, got, want)
		}
	}
}
