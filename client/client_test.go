package client_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bitrun/bitrun/api"
	"github.com/bitrun/bitrun/client"
	"github.com/bitrun/bitrun/internal/servetest"
	"github.com/bitrun/bitrun/runtime"
	"github.com/bitrun/bitrun/serve"
)

// meanRunner is a toy model: logits are the per-channel means of the input,
// labels "red", "green", "blue".
type meanRunner struct{ res int }

func (r meanRunner) Info() runtime.Info {
	return runtime.Info{Input: "image", Shape: []int64{-1, 3, -1, -1}, Outputs: []string{"logits"},
		Metadata: map[string]string{"bitrun.resolution": fmt.Sprint(r.res), "bitrun.labels": `["red","green","blue"]`}}
}

func (r meanRunner) Run(_ context.Context, in []float32, shape []int64) (map[string]runtime.Output, error) {
	n, plane := int(shape[0]), r.res*r.res
	out := make([]float32, n*3)
	for i := range n * 3 {
		var s float32
		for _, v := range in[i*plane : (i+1)*plane] {
			s += v
		}
		out[i] = s / float32(plane)
	}
	return map[string]runtime.Output{"logits": {Shape: []int64{int64(n), 3}, Data: out}}, nil
}

func (meanRunner) Close() error { return nil }

func startServer(t testing.TB, cfg serve.Config) string {
	c, err := serve.New(meanRunner{res: 4}, serve.Options{Name: "colors"})
	if err != nil {
		t.Fatal(err)
	}
	return servetest.HTTP(t, servetest.NewServer(t, cfg, c)).URL
}

func pngOf(c color.Color) []byte {
	m := image.NewRGBA(image.Rect(0, 0, 6, 6))
	for i := 0; i < 36; i++ {
		m.Set(i%6, i/6, c)
	}
	var b bytes.Buffer
	png.Encode(&b, m)
	return b.Bytes()
}

func TestClient(t *testing.T) {
	base := startServer(t, serve.Config{AuthToken: "tok"})
	ctx := context.Background()
	c, err := client.New(base+"/", client.WithToken("tok"))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Live(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.ModelReady(ctx, "colors"); err != nil {
		t.Fatal(err)
	}
	models, err := c.Models(ctx)
	if err != nil || len(models) != 1 || models[0].Name != "colors" || !models[0].Ready {
		t.Fatalf("models %+v %v", models, err)
	}
	md, err := c.Metadata(ctx, "colors")
	if err != nil || md.Classes != 3 || md.Preprocessing.Resolution != 4 || md.Inputs[0].Name != "image" {
		t.Fatalf("metadata %+v %v", md, err)
	}
	pr, err := c.Predict(ctx, "colors", pngOf(color.RGBA{G: 255, A: 255}), 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(pr.Predictions) != 2 || pr.Predictions[0].Label != "green" || pr.Predictions[0].Index != 1 || pr.ID == "" {
		t.Fatalf("predict %+v", pr)
	}
	many, err := c.PredictFiles(ctx, "colors", []client.File{{"r.png", pngOf(color.RGBA{R: 255, A: 255})}, {"b.png", pngOf(color.RGBA{B: 255, A: 255})}}, 1)
	if err != nil || len(many.Results) != 2 || many.Results[0].Predictions[0].Label != "red" || many.Results[1].File != "b.png" ||
		many.Results[1].Predictions[0].Label != "blue" {
		t.Fatalf("predict files %+v %v", many, err)
	}
	x := make([]float32, 2*3*4*4)
	for i := range x {
		x[i] = float32(i / 16 % 3) // channel index: logits (0,1,2) for both rows
	}
	ir, err := c.Infer(ctx, "colors", &client.InferRequest{ID: "q", Inputs: []client.Tensor{api.FP32("image", []int64{2, 3, 4, 4}, x)}, Outputs: []client.RequestedOutput{{Name: "logits"}}})
	if err != nil {
		t.Fatal(err)
	}
	if o := ir.Output("logits"); o == nil || fmt.Sprint(o.Shape, floats(t, o)) != "[2 3] [0 1 2 0 1 2]" || ir.ID != "q" {
		t.Fatalf("infer %+v", ir)
	}

	// Errors come back typed.
	_, err = c.Predict(ctx, "nope", pngOf(color.White), 0)
	var e *client.Error
	if !errors.As(err, &e) || e.StatusCode != 404 || !strings.Contains(e.Message, "nope") || e.RequestID == "" {
		t.Fatalf("unknown model: %v", err)
	}
	anon, _ := client.New(base)
	if err := anon.ModelReady(ctx, "colors"); client.StatusCode(err) != 401 {
		t.Fatalf("no token: %v", err)
	}
	if err := anon.Ready(ctx); err != nil {
		t.Fatalf("health probes need no token: %v", err)
	}
	if _, err := client.New("ftp://x"); err == nil {
		t.Error("ftp base URL accepted")
	}
}

// TestRetries: 503 answers are retried after Retry-After, up to the limit.
func TestRetries(t *testing.T) {
	var calls atomic.Int32
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) <= 2 {
			w.Header().Set("Retry-After", "0")
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(503)
			fmt.Fprint(w, `{"error":"serve: queue full"}`)
			return
		}
		fmt.Fprint(w, `{"models":[{"name":"m","ready":true}]}`)
	}))
	defer ts.Close()
	c, _ := client.New(ts.URL, client.WithRetries(2, time.Second))
	if _, err := c.Models(context.Background()); err != nil || calls.Load() != 3 {
		t.Fatalf("err %v after %d calls", err, calls.Load())
	}
	calls.Store(0)
	c, _ = client.New(ts.URL)
	_, err := c.Models(context.Background())
	var e *client.Error
	if !errors.As(err, &e) || e.StatusCode != 503 || !e.Temporary() || e.Message != "serve: queue full" {
		t.Fatalf("without retries: %v", err)
	}
}

// TestPrefix: a server mounted under a path prefix.
func TestPrefix(t *testing.T) {
	c0, _ := serve.New(meanRunner{res: 4}, serve.Options{Name: "m"})
	srv, _ := serve.NewServer(serve.Config{}, c0)
	defer srv.Close()
	mux := http.NewServeMux()
	mux.Handle("/api/ml/", http.StripPrefix("/api/ml", srv.Handler()))
	ts := httptest.NewServer(mux)
	defer ts.Close()
	c, _ := client.New(ts.URL + "/api/ml")
	if _, err := c.Predict(context.Background(), "m", pngOf(color.Black), 1); err != nil {
		t.Fatal(err)
	}
}

func floats(t *testing.T, o *api.Tensor) []float32 {
	t.Helper()
	v, err := o.Float32s()
	if err != nil {
		t.Fatal(err)
	}
	return v
}
