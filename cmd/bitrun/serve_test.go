package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/viper"

	"github.com/bitrun/bitrun/internal/testwait"
)

func TestParseSizes(t *testing.T) {
	for _, tc := range []struct {
		in    string
		bytes bool
		want  int64
		ok    bool
	}{
		{"16MiB", true, 16 << 20, true}, {"16M", true, 16 << 20, true}, {"512 KiB", true, 512 << 10, true},
		{"2MB", true, 2e6, true}, {"1048576", true, 1 << 20, true}, {"1.5GiB", true, 3 << 29, true},
		{"40M", false, 40e6, true}, {"1k", false, 1000, true}, {"250000", false, 250000, true},
		{"", true, 0, false}, {"MiB", true, 0, false}, {"-1", true, 0, false}, {"16XB", true, 0, false},
		{"0", false, 0, false}, {"40MiB", false, 0, false}, {"1e99", false, 0, false},
	} {
		parse := parseCount
		if tc.bytes {
			parse = parseByteSize
		}
		got, err := parse(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parse(%q, bytes=%v) = %d, %v; want %d ok=%v", tc.in, tc.bytes, got, err, tc.want, tc.ok)
		}
	}
}

func TestServeLoadtestUsageErrors(t *testing.T) {
	dir := t.TempDir()
	model := writeTestFile(t, dir, "m.onnx", "not really")
	img := writeTestFile(t, dir, "x.jpg", "x")
	for _, args := range [][]string{
		{"serve"},
		{"serve", "--onnx", model, "--max-body", "lots"},
		{"serve", "--onnx", model, "--max-pixels", "40MiB"},
		{"serve", "--onnx", model, "--log-format", "xml"},
		{"serve", "--onnx", model, "--max-batch", "0"},
		{"serve", "--onnx", model, "--onnx", model},
		{"serve", "--onnx", model, "--name", "a", "--name", "b"},
		{"serve", "--onnx", model, "--name", "../x"},
		{"serve", "--onnx", model, "--addr", "nope"},
		{"loadtest", "--image", img, "--url", "http://10.1.2.3:8080"},
		{"loadtest", "--image", img, "--url", "http://example.com"},
		{"loadtest", "--image", img, "--url", "http://[2001:db8::1]:80"},
		{"loadtest", "--image", img, "--concurrency", "0"},
		{"loadtest", "--image", img, "--concurrency", "100000"},
		{"loadtest", "--image", img, "--requests", "1000000000"},
		{"loadtest", "--url", "http://127.0.0.1:1"},
		{"loadtest", "--image", img, "--url", "ftp://127.0.0.1"},
	} {
		_, _, err := execCLI(t, args...)
		var ue usageError
		if !errors.As(err, &ue) {
			t.Errorf("%v: got %v, want a usage error", args, err)
		}
	}
	// A missing or corrupt model file is a plain failure, not a usage error
	// (the corrupt one fails after the server started listening).
	for _, p := range []string{filepath.Join(dir, "missing.onnx"), model} {
		if _, _, err := execCLI(t, "serve", "--onnx", p, "--addr", "127.0.0.1:0"); err == nil || errors.As(err, new(usageError)) {
			t.Errorf("model %s: %v", p, err)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var listenURL = regexp.MustCompile(`"msg":"listening","url":"(http://[^"]+)"`)

// startServeCLI runs `bitrun serve ARGS --addr 127.0.0.1:0 --log-format json`
// in-process until stop, and returns its URL once ready.
func startServeCLI(t *testing.T, args ...string) (base string, logs *syncBuffer, stop func() error) {
	t.Helper()
	cfg = viper.New()
	root := newRoot()
	logs = &syncBuffer{}
	root.SetOut(io.Discard)
	root.SetErr(logs)
	root.SetArgs(append(append([]string{"serve"}, args...), "--addr", "127.0.0.1:0", "--log-format", "json"))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	stop = func() error { cancel(); return <-done }
	deadline := time.Now().Add(30 * time.Second)
	for base == "" || !serveReady(base) {
		if m := listenURL.FindStringSubmatch(logs.String()); m != nil {
			base = m[1]
		}
		select {
		case err := <-done:
			t.Fatalf("serve exited: %v\n%s", err, logs.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			stop()
			t.Fatalf("serve not ready in 30s:\n%s", logs.String())
		}
	}
	return base, logs, stop
}

// serveReady probes the readiness of the server at base as bitrun health
// does.
func serveReady(base string) bool {
	o := healthOptions{url: base, path: "/v2/health/ready", timeout: 5 * time.Second}
	return runHealth(context.Background(), o, io.Discard, io.Discard) == nil
}

// writeTestJPEGs writes n distinct JPEGs of different sizes.
func writeTestJPEGs(t *testing.T, n int) []string {
	dir := t.TempDir()
	var files []string
	for i := range n {
		w, h := 30+17*i, 50+11*i
		m := image.NewRGBA(image.Rect(0, 0, w, h))
		for y := range h {
			for x := range w {
				m.Set(x, y, color.RGBA{uint8(x * (i + 3)), uint8(y * (7 - i)), uint8((x + y) * i), 255})
			}
		}
		var b bytes.Buffer
		if err := jpeg.Encode(&b, m, nil); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, fmt.Sprintf("img%d.jpg", i))
		if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, p)
	}
	return files
}

// TestServeMatchesPredictCLI: the same images give the same top-k through
// `bitrun predict` and through `bitrun serve` over HTTP; then `bitrun
// loadtest` runs against the server.
func TestServeMatchesPredictCLI(t *testing.T) {
	requireORTCLI(t)
	m := tinyModel(t)
	files := writeTestJPEGs(t, 5)
	out, _, err := execCLI(t, append([]string{"predict", "--onnx", m.onnx, "--json", "--top-k", "4"}, files...)...)
	if err != nil {
		t.Fatalf("predict: %v", err)
	}
	var cli []prediction
	if err := json.Unmarshal([]byte(out), &cli); err != nil {
		t.Fatal(err)
	}

	base, logs, stop := startServeCLI(t, "--onnx", m.onnx, "--name", "fashion", "--max-batch", "4")
	defer func() {
		if err := stop(); err != nil {
			t.Errorf("serve returned %v after cancel", err)
		}
		if !strings.Contains(logs.String(), `"msg":"stopped"`) {
			t.Errorf("no stopped line in the logs:\n%s", logs.String())
		}
	}()
	type httpPred struct {
		Predictions []struct {
			Label string  `json:"label"`
			Index int     `json:"index"`
			Score float64 `json:"score"`
		} `json:"predictions"`
	}
	var wg sync.WaitGroup
	got := make([]httpPred, len(files))
	for i, f := range files {
		wg.Go(func() { // concurrently, so that the server batches them
			b, _ := os.ReadFile(f)
			resp, err := http.Post(base+"/v1/models/fashion/predict?top_k=4", "image/jpeg", bytes.NewReader(b))
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Errorf("%s: status %d", f, resp.StatusCode)
			}
			json.NewDecoder(resp.Body).Decode(&got[i])
		})
	}
	wg.Wait()
	if len(cli) != len(files) {
		t.Fatalf("predict printed %d results", len(cli))
	}
	for i := range files {
		h, c := got[i].Predictions, cli[i].Top
		if len(h) != len(c) {
			t.Fatalf("%s: HTTP %d predictions, CLI %d", files[i], len(h), len(c))
		}
		for r := range c {
			if h[r].Index != c[r].Index || h[r].Label != c[r].Label || math.Abs(h[r].Score-c[r].Score) > 1e-6 {
				t.Errorf("%s rank %d: HTTP %+v, CLI %+v", files[i], r, h[r], c[r])
			}
		}
	}
	if !strings.Contains(logs.String(), `"msg":"request"`) || !strings.Contains(logs.String(), `"route":"predict"`) {
		t.Errorf("no per-request log lines:\n%s", logs.String())
	}

	// loadtest against it (small, bounded).
	out, _, err = execCLI(t, "loadtest", "--url", base, "--image", files[0], "--concurrency", "8", "--requests", "64", "--json")
	if err != nil {
		t.Fatalf("loadtest: %v", err)
	}
	var rep loadReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if rep.Requests != 64 || rep.OK != 64 || rep.Lost != 0 || rep.Status["200"] != 64 || rep.Throughput <= 0 ||
		!(rep.LatencyMs.P50 > 0 && rep.LatencyMs.P50 <= rep.LatencyMs.P90 && rep.LatencyMs.P90 <= rep.LatencyMs.P99) || rep.Batches < 1 {
		t.Errorf("loadtest report %+v", rep)
	}
	// The text report names the percentiles.
	out, _, err = execCLI(t, "loadtest", "--url", base+"/v1/models/fashion/predict", "--image", files[1], "--concurrency", "2", "--requests", "4")
	if err != nil || !strings.Contains(out, "p50") || !strings.Contains(out, "p99") || !strings.Contains(out, "200: 4") {
		t.Errorf("loadtest text: %v\n%s", err, out)
	}
}

// TestServeHelperProcess is not a test: TestServeSIGTERM runs the test
// binary as a `bitrun serve` process through it.
func TestServeHelperProcess(t *testing.T) {
	if os.Getenv("BITRUN_SERVE_HELPER") != "1" {
		t.Skip("helper process for TestServeSIGTERM")
	}
	var args []string
	if err := json.Unmarshal([]byte(os.Getenv("BITRUN_SERVE_ARGS")), &args); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	os.Exit(run(args))
}

// TestServeSIGTERM runs `bitrun serve` as a real process, sends SIGTERM
// while requests wait in the batch queue, and checks that readiness turns
// 503, the requests complete with 200 and the process exits 0 within the
// grace period.
func TestServeSIGTERM(t *testing.T) {
	requireORTCLI(t)
	m := tinyModel(t)
	files := writeTestJPEGs(t, 1)
	img, _ := os.ReadFile(files[0])
	args, _ := json.Marshal([]string{"serve", "--onnx", m.onnx, "--addr", "127.0.0.1:0", "--log-format", "json",
		"--max-batch", "64", "--batch-delay", "1500ms", "--drain-delay", "1s", "--grace", "10s"})
	cmd := exec.Command(os.Args[0], "-test.run=^TestServeHelperProcess$")
	cmd.Env = append(os.Environ(), "BITRUN_SERVE_HELPER=1", "BITRUN_SERVE_ARGS="+string(args))
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	logs := &syncBuffer{}
	urlc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logs.Write(append(sc.Bytes(), '\n'))
			if m := listenURL.FindSubmatch(sc.Bytes()); m != nil {
				urlc <- string(m[1])
			}
		}
	}()
	var base string
	select {
	case base = <-urlc:
	case <-time.After(30 * time.Second):
		t.Fatalf("no listening line:\n%s", logs.String())
	}
	for deadline := time.Now().Add(30 * time.Second); !serveReady(base); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("not ready:\n%s", logs.String())
		}
	}

	const inflight = 6
	codes := make(chan int, inflight)
	for range inflight {
		go func() {
			resp, err := http.Post(base+"/v1/models/tiny/predict", "image/jpeg", bytes.NewReader(img))
			if err != nil {
				codes <- 0
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			codes <- resp.StatusCode
		}()
	}
	// All six wait in the queue (the batch waits 1.5 s for company) before
	// the signal: a request that came after it would rightly be refused.
	queued := regexp.MustCompile(`(?m)^bitrun_queue_images\{[^}]*\} 6$`)
	testwait.Until(t, 10*time.Second, 20*time.Millisecond, func() error {
		resp, err := http.Get(base + "/metrics")
		if err != nil {
			return err
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !queued.Match(b) {
			return fmt.Errorf("not 6 images queued yet")
		}
		return nil
	})
	start := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// During the drain delay (1 s) the listener is open and readiness says
	// 503.
	testwait.Until(t, 5*time.Second, 10*time.Millisecond, func() error {
		resp, err := http.Get(base + "/v2/health/ready")
		if err != nil {
			return fmt.Errorf("readiness did not turn 503 after SIGTERM before the listener closed: %w", err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable {
			return fmt.Errorf("readiness %d after SIGTERM, want 503", resp.StatusCode)
		}
		return nil
	})
	for range inflight {
		if code := <-codes; code != 200 {
			t.Errorf("in-flight request got %d, want 200", code)
		}
	}
	waitErr := make(chan error, 1)
	go func() { waitErr <- cmd.Wait() }()
	select {
	case err := <-waitErr:
		if err != nil {
			t.Errorf("serve exited with %v, want status 0\n%s", err, logs.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("serve still running 10s (the grace period) after SIGTERM\n%s", logs.String())
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("exit took %v", d)
	}
	for _, want := range []string{`"msg":"signal received: draining"`, `"msg":"stopped"`, `"route":"predict","status":200`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("logs lack %s:\n%s", want, logs.String())
		}
	}
}

// TestServeWeightsAndToken serves a checkpoint (exported at start-up) behind
// a bearer token.
func TestServeWeightsAndToken(t *testing.T) {
	requireORTCLI(t)
	m := tinyModel(t)
	tok := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tok, []byte("hunter2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	base, _, stop := startServeCLI(t, "--weights", m.npz, "--resolution", "48", "--name", "w", "--auth-token-file", tok)
	defer stop()
	img, _ := os.ReadFile(writeTestJPEGs(t, 1)[0])
	for _, tc := range []struct {
		token string
		want  int
	}{{"", 401}, {"wrong", 401}, {"hunter2", 200}} {
		req, _ := http.NewRequest("POST", base+"/v1/models/w/predict", bytes.NewReader(img))
		req.Header.Set("Content-Type", "image/jpeg")
		if tc.token != "" {
			req.Header.Set("Authorization", "Bearer "+tc.token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.want || !json.Valid(body) {
			t.Errorf("token %q: %d %s, want %d", tc.token, resp.StatusCode, body, tc.want)
		}
	}
	req, _ := http.NewRequest("GET", base+"/v2/models/w", nil)
	req.Header.Set("Authorization", "Bearer hunter2")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var md struct {
		Preprocessing struct {
			Resolution int `json:"resolution"`
		} `json:"preprocessing"`
		Classes int `json:"classes"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&md); err != nil || md.Preprocessing.Resolution != 48 || md.Classes != 10 {
		t.Errorf("metadata %+v %v", md, err)
	}
}

// A list flag left unset is an empty list: serve's CORS origins were the
// one origin "[]" (the flag's default text), so every request with an
// Origin header got a Vary header.
func TestServeListFlagDefault(t *testing.T) {
	o, err := readFlags(t, newServeCmd, serveFlags, "--onnx", "m.onnx")
	if err != nil {
		t.Fatal(err)
	}
	if len(o.server.CORSOrigins) != 0 {
		t.Errorf("CORS origins %q without --cors-origin, want none", o.server.CORSOrigins)
	}
	if o, err = readFlags(t, newServeCmd, serveFlags, "--onnx", "m.onnx", "--cors-origin", "https://a.example", "--cors-origin", "https://b.example"); err != nil || len(o.server.CORSOrigins) != 2 {
		t.Errorf("two --cors-origin: %q, %v", o.server.CORSOrigins, err)
	}
	// The environment variable holds a comma-separated list (viper split a
	// string at white space only: "a,b" was one origin).
	for _, env := range []string{"https://a.example, https://b.example,", "https://a.example https://b.example"} {
		t.Setenv("BITRUN_SERVE_CORS_ORIGINS", env)
		if o, err = readFlags(t, newServeCmd, serveFlags, "--onnx", "m.onnx"); err != nil || !slices.Equal(o.server.CORSOrigins, []string{"https://a.example", "https://b.example"}) {
			t.Errorf("BITRUN_SERVE_CORS_ORIGINS=%q: %q, %v", env, o.server.CORSOrigins, err)
		}
	}
}

// serve reads --labels while it checks its options, before any download or
// export (it was read after the checkpoint was resolved and loaded), and
// refuses --labels without --weights/--model (it was ignored).
func TestServeLabelsChecked(t *testing.T) {
	dir := t.TempDir()
	ckpt := filepath.Join(dir, "tiny.npz")
	initCheckpoint(t, ckpt, "--arch", "tiny", "--classes", "2")
	labels := writeTestFile(t, dir, "labels.txt", "cat\ndog\n")
	o, err := readFlags(t, newServeCmd, serveFlags, "--weights", ckpt, "--labels", labels)
	if err != nil {
		t.Fatal(err)
	}
	if err := o.validate(); err != nil || !slices.Equal(o.labels, []string{"cat", "dog"}) {
		t.Fatalf("validate: %v, labels %q", err, o.labels)
	}
	o, _ = readFlags(t, newServeCmd, serveFlags, "--weights", ckpt, "--labels", filepath.Join(dir, "missing.txt"))
	if err := o.validate(); err == nil || !strings.Contains(err.Error(), "missing.txt") {
		t.Errorf("missing labels file: validate gave %v", err)
	}
	o, _ = readFlags(t, newServeCmd, serveFlags, "--onnx", ckpt, "--labels", labels)
	var ue usageError
	if err := o.validate(); !errors.As(err, &ue) || !strings.Contains(err.Error(), "--labels") {
		t.Errorf("--labels with --onnx: %v, want a usage error", err)
	}
}
