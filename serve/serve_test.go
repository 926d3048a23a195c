package serve_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image/color"
	"image/jpeg"
	"io"
	"math"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bitrun/bitrun/internal/servetest"
	"github.com/bitrun/bitrun/internal/testimg"
	"github.com/bitrun/bitrun/internal/testwait"
	"github.com/bitrun/bitrun/serve"
)

// newTestServer serves a colorRunner model named "colors" at resolution 8.
func newTestServer(t *testing.T, cfg serve.Config, opts serve.Options) (*serve.Server, *colorRunner, *httptest.Server) {
	t.Helper()
	r := newColorRunner(t, 8)
	if opts.Name == "" {
		opts.Name = "colors"
	}
	c, err := serve.New(r, opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := servetest.NewServer(t, cfg, c)
	ts := servetest.HTTP(t, srv)
	t.Cleanup(r.release) // runs first: held batches end before the server closes
	return srv, r, ts
}

type errorJSON struct {
	Error string `json:"error"`
}

// do sends a request and returns the status and body.
func do(t *testing.T, method, url, contentType string, body []byte, header map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func jpegBytes(t *testing.T) []byte {
	var b bytes.Buffer
	if err := jpeg.Encode(&b, solid(64, 48, color.RGBA{R: 200, G: 100, B: 50, A: 255}), nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// multipartBody is a multipart/form-data body: a "note" field, then one
// "file" part per name of order, holding files[name].
func multipartBody(t *testing.T, files map[string][]byte, order []string) (string, []byte) {
	t.Helper()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	if err := mw.WriteField("note", "ignored"); err != nil {
		t.Fatal(err)
	}
	for _, name := range order {
		w, err := mw.CreateFormFile("file", name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(files[name])
	}
	mw.Close()
	return mw.FormDataContentType(), b.Bytes()
}

func inferBody(shape []int64, datatype string, data any) []byte {
	b, _ := json.Marshal(map[string]any{"inputs": []map[string]any{{"name": "image", "shape": shape, "datatype": datatype, "data": data}}})
	return b
}

func TestBadInputs(t *testing.T) {
	cfg := serve.Config{MaxBody: 64 << 10, MaxPixels: 1 << 20, MaxImages: 2, AuthToken: "s3cret"}
	_, _, ts := newTestServer(t, cfg, serve.Options{})
	auth := map[string]string{"Authorization": "Bearer s3cret"}
	good := jpegBytes(t)
	mpCT, mpThree := multipartBody(t, map[string][]byte{"a.jpg": good, "b.jpg": good, "c.jpg": good}, []string{"a.jpg", "b.jpg", "c.jpg"})
	mpNoneCT, mpNone := multipartBody(t, nil, nil)
	predict := ts.URL + "/v1/models/colors/predict"
	infer := ts.URL + "/v2/models/colors/infer"
	row := make([]float32, 3*8*8)
	for _, tc := range []struct {
		name        string
		method, url string
		ct          string
		body        []byte
		header      map[string]string
		want        int
		msg         string // substring of the error message
	}{
		{"empty body", "POST", predict, "image/jpeg", nil, auth, 400, "empty"},
		{"truncated JPEG", "POST", predict, "image/jpeg", good[:len(good)/2], auth, 400, "jpeg"},
		{"text as image/png", "POST", predict, "image/png", []byte("hello, I am not a picture"), auth, 400, "bad image"},
		{"PNG header 50000x50000", "POST", predict, "image/png", testimg.PNGHeader(50000, 50000), auth, 413, "max-pixels"},
		{"body over the cap", "POST", predict, "image/jpeg", bytes.Repeat([]byte{0xFF}, 65<<10), auth, 413, "max-body limit of 64 KiB"},
		{"too many images", "POST", predict, mpCT, mpThree, auth, 413, "max-images"},
		{"multipart without file", "POST", predict, mpNoneCT, mpNone, auth, 400, `no part named "file"`},
		{"multipart without boundary", "POST", predict, "multipart/form-data", good, auth, 400, "boundary"},
		{"unsupported media", "POST", predict, "application/json", []byte("{}"), auth, 415, "image/"},
		{"bad top_k", "POST", predict + "?top_k=zero", "image/jpeg", good, auth, 400, "top_k"},
		{"unknown model", "POST", ts.URL + "/v1/models/nope/predict", "image/jpeg", good, auth, 404, `"nope"`},
		{"unknown model metadata", "GET", ts.URL + "/v2/models/nope", "", nil, auth, 404, "model not found"},
		{"missing token", "POST", predict, "image/jpeg", good, nil, 401, "Bearer"},
		{"wrong token", "POST", predict, "image/jpeg", good, map[string]string{"Authorization": "Bearer nope"}, 401, "wrong bearer token"},
		{"wrong method", "GET", predict, "", nil, auth, 405, "POST"},
		{"unknown route", "GET", ts.URL + "/v3/whatever", "", nil, auth, 404, "no such endpoint"},
		{"infer wrong shape", "POST", infer, "application/json", inferBody([]int64{1, 3, 4, 4}, "FP32", make([]float32, 48)), auth, 400, "shape"},
		{"infer wrong dtype", "POST", infer, "application/json", inferBody([]int64{1, 3, 8, 8}, "INT64", row), auth, 400, "datatype"},
		{"infer data length", "POST", infer, "application/json", inferBody([]int64{1, 3, 8, 8}, "FP32", row[:10]), auth, 400, "values"},
		{"infer strings", "POST", infer, "application/json", inferBody([]int64{1, 3, 8, 8}, "FP32", []string{"a"}), auth, 400, "only numbers"},
		{"infer wrong input name", "POST", infer, "application/json", []byte(`{"inputs":[{"name":"x","shape":[1,3,8,8],"datatype":"FP32","data":[]}]}`), auth, 400, `"x"`},
		{"infer too many rows", "POST", infer, "application/json", inferBody([]int64{3, 3, 8, 8}, "FP32", make([]float32, 3*192)), auth, 413, "max-images"},
		{"infer malformed JSON", "POST", infer, "application/json", []byte(`{"inputs": [`), auth, 400, "JSON"},
		{"infer unknown field", "POST", infer, "application/json", []byte(`{"inputz": []}`), auth, 400, "inputz"},
		{"infer unknown output", "POST", infer, "application/json", []byte(`{"inputs":[{"name":"image","shape":[1,3,8,8],"datatype":"FP32","data":` + mustJSON(row) + `}],"outputs":[{"name":"nope"}]}`), auth, 400, `"nope"`},
		{"infer binary data", "POST", infer, "application/json", []byte(`{"inputs":[{"name":"image","shape":[1,3,8,8],"datatype":"FP32","parameters":{"binary_data_size":768}}]}`), auth, 400, "binary"},
		{"infer as text", "POST", infer, "text/plain", []byte("{}"), auth, 415, "application/json"},
		{"infer body over the cap", "POST", infer, "application/json", inferBody([]int64{1, 3, 8, 8}, "FP32", make([]float32, 40000)), auth, 413, "max-body"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := do(t, tc.method, tc.url, tc.ct, tc.body, tc.header)
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d, want %d; body %s", resp.StatusCode, tc.want, body)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q, want application/json", ct)
			}
			var e errorJSON
			if err := json.Unmarshal(body, &e); err != nil || e.Error == "" {
				t.Fatalf("body %q is not a JSON error: %v", body, err)
			}
			if !strings.Contains(e.Error, tc.msg) {
				t.Errorf("error %q does not mention %q", e.Error, tc.msg)
			}
			if resp.Header.Get("X-Request-Id") == "" {
				t.Error("no X-Request-Id")
			}
		})
	}
	// The server is still healthy after all that.
	if resp, body := do(t, "POST", predict, "image/jpeg", good, auth); resp.StatusCode != 200 {
		t.Fatalf("good request after bad ones: %d %s", resp.StatusCode, body)
	}
	// Health probes need no token.
	if resp, body := do(t, "GET", ts.URL+"/v2/health/ready", "", nil, nil); resp.StatusCode != 200 {
		t.Fatalf("ready without token: %d %s", resp.StatusCode, body)
	}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func TestPredict(t *testing.T) {
	_, _, ts := newTestServer(t, serve.Config{}, serve.Options{})
	red, blue := pngBytes(solid(20, 10, color.RGBA{R: 255, A: 255})), pngBytes(solid(9, 9, color.RGBA{B: 255, A: 255}))

	resp, body := do(t, "POST", ts.URL+"/v1/models/colors/predict?top_k=2", "image/png", red, map[string]string{"X-Request-Id": "req-1"})
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	var pr serve.PredictResponse
	if err := json.Unmarshal(body, &pr); err != nil {
		t.Fatal(err)
	}
	if pr.Model != "colors" || pr.ID != "req-1" || resp.Header.Get("X-Request-Id") != "req-1" {
		t.Errorf("model %q id %q header %q", pr.Model, pr.ID, resp.Header.Get("X-Request-Id"))
	}
	if len(pr.Predictions) != 2 || pr.Predictions[0].Label != "red" || pr.Predictions[0].Index != 0 {
		t.Fatalf("predictions %+v", pr.Predictions)
	}
	// red: logits (1, -1, -1) -> softmax e/(e+2/e)
	if want := math.E / (math.E + 2/math.E); math.Abs(pr.Predictions[0].Score-want) > 1e-6 {
		t.Errorf("score %v, want %v", pr.Predictions[0].Score, want)
	}
	// Tie between green and blue goes to the lower index.
	if pr.Predictions[1].Index != 1 {
		t.Errorf("tie broken to %d, want 1", pr.Predictions[1].Index)
	}

	// Multipart, two files, default top_k (5, capped at 3 classes).
	ct, mp := multipartBody(t, map[string][]byte{"r.png": red, "b.png": blue}, []string{"b.png", "r.png"})
	resp, body = do(t, "POST", ts.URL+"/v1/models/colors/predict", ct, mp, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	pr = serve.PredictResponse{}
	if err := json.Unmarshal(body, &pr); err != nil {
		t.Fatal(err)
	}
	if len(pr.Results) != 2 || pr.Results[0].File != "b.png" || pr.Results[1].File != "r.png" {
		t.Fatalf("results %+v", pr.Results)
	}
	if pr.Results[0].Predictions[0].Label != "blue" || pr.Results[1].Predictions[0].Label != "red" || len(pr.Results[0].Predictions) != 3 {
		t.Errorf("results %+v", pr.Results)
	}
	if pr.Predictions[0].Label != "blue" {
		t.Errorf("top-level predictions %+v are not the first image's", pr.Predictions)
	}
}

func TestMetadataAndHealth(t *testing.T) {
	_, _, ts := newTestServer(t, serve.Config{Version: "v9.9.9"}, serve.Options{MaxBatch: 4})
	resp, b := do(t, "GET", ts.URL+"/v2/models/colors", "", nil, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	var m serve.ModelMetadata
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if m.Name != "colors" || m.Classes != 3 || fmt.Sprint(m.Labels) != "[red green blue]" || m.MaxBatch != 4 || !m.Ready {
		t.Errorf("metadata %+v", m)
	}
	if len(m.Inputs) != 1 || m.Inputs[0].Name != "image" || fmt.Sprint(m.Inputs[0].Shape) != "[-1 3 8 8]" {
		t.Errorf("inputs %+v", m.Inputs)
	}
	if len(m.Outputs) != 2 || fmt.Sprint(m.Outputs[0].Shape) != "[-1 3]" || fmt.Sprint(m.Outputs[1].Shape) != "[-1 1]" {
		t.Errorf("outputs %+v", m.Outputs)
	}
	p := m.Preprocessing
	if p.Resolution != 8 || p.Channels != 3 || p.Layout != "NCHW" || fmt.Sprint(p.Mean) != "[0.5 0.5 0.5]" {
		t.Errorf("preprocessing %+v", p)
	}
	for _, tc := range []struct{ path, want string }{
		{"/v2", `"version":"v9.9.9"`},
		{"/v2/health/live", `"live":true`},
		{"/v2/health/ready", `"ready":true`},
		{"/v2/models/colors/ready", `"ready":true`},
		{"/healthz", `"status":"ok"`},
		{"/v1/models", `"name":"colors"`},
	} {
		resp, b := do(t, "GET", ts.URL+tc.path, "", nil, nil)
		if resp.StatusCode != 200 || !strings.Contains(string(b), tc.want) {
			t.Errorf("GET %s: %d %s, want %s", tc.path, resp.StatusCode, b, tc.want)
		}
	}
}

// TestBatching sends concurrent requests to a slow model and checks that
// they share batches, that every answer is the right one, and that
// /metrics shows it.
func TestBatching(t *testing.T) {
	srv, r, ts := newTestServer(t, serve.Config{}, serve.Options{MaxBatch: 8, BatchDelay: 20 * time.Millisecond})
	_ = srv
	r.delay = 5 * time.Millisecond
	colors := []color.RGBA{{R: 255, A: 255}, {G: 255, A: 255}, {B: 255, A: 255}}
	labels := []string{"red", "green", "blue"}
	imgs := make([][]byte, 3)
	for i, c := range colors {
		imgs[i] = pngBytes(solid(12, 12, c))
	}
	const n = 48
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			resp, err := http.Post(ts.URL+"/v1/models/colors/predict?top_k=1", "image/png", bytes.NewReader(imgs[i%3]))
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			var pr serve.PredictResponse
			if err := json.NewDecoder(resp.Body).Decode(&pr); err != nil || resp.StatusCode != 200 {
				t.Errorf("status %d, decode %v", resp.StatusCode, err)
				return
			}
			if got := pr.Predictions[0].Label; got != labels[i%3] {
				t.Errorf("request %d got %s, want %s", i, got, labels[i%3])
			}
		})
	}
	wg.Wait()
	sizes := r.batchSizes()
	total, largest := 0, 0
	for _, s := range sizes {
		total += s
		largest = max(largest, s)
		if s > 8 {
			t.Errorf("batch of %d over MaxBatch 8", s)
		}
	}
	if total != n {
		t.Errorf("model saw %d images, want %d", total, n)
	}
	if largest < 2 {
		t.Errorf("no batch larger than 1 in %v", sizes)
	}
	_, body := do(t, "GET", ts.URL+"/metrics", "", nil, nil)
	for _, want := range []string{
		`bitrun_batch_size_count{model="colors",version="1"} ` + fmt.Sprint(len(sizes)),
		`bitrun_batch_size_sum{model="colors",version="1"} ` + fmt.Sprint(n),
		`bitrun_http_requests_total{code="200",route="predict"} ` + fmt.Sprint(n),
		`bitrun_http_request_duration_seconds_count{route="predict"}`,
		`bitrun_queue_duration_seconds_count{model="colors",version="1"} ` + fmt.Sprint(n),
		`bitrun_model_load_duration_seconds{model="colors",version="1"}`,
		`bitrun_http_requests_in_flight 1`,
		`bitrun_build_info{`,
		`bitrun_queue_images{model="colors",version="1"} 0`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func TestQueueFull(t *testing.T) {
	_, r, ts := newTestServer(t, serve.Config{}, serve.Options{MaxBatch: 1, MaxQueue: 1, BatchDelay: -1})
	r.hold()
	img := pngBytes(solid(8, 8, color.RGBA{G: 255, A: 255}))
	url := ts.URL + "/v1/models/colors/predict"
	results := make(chan int, 2)
	go postPNG(url, img, results)
	<-r.started                   // the first request is in the model, held
	go postPNG(url, img, results) // the second waits in the queue (capacity 1)
	waitFor(t, func() bool {
		_, b := do(t, "GET", ts.URL+"/metrics", "", nil, nil)
		return strings.Contains(string(b), `bitrun_queue_images{model="colors",version="1"} 1`)
	})
	resp, body := do(t, "POST", url, "image/png", img, nil)
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(body), "queue full") {
		t.Fatalf("third request: %d Retry-After %q %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	r.release()
	for range 2 {
		if code := <-results; code != 200 {
			t.Errorf("queued request got %d", code)
		}
	}
}

// TestQueueMetricsCountFormingBatch: images collected into a batch that
// waits for company are still waiting: the queue gauge counts them, and the
// queue-time histogram measures until their batch runs (it counted only the
// channel, so both read about zero while a 1 s batch delay passed).
func TestQueueMetricsCountFormingBatch(t *testing.T) {
	_, _, ts := newTestServer(t, serve.Config{}, serve.Options{MaxBatch: 8, BatchDelay: time.Second})
	img := pngBytes(solid(8, 8, color.RGBA{G: 255, A: 255}))
	codes := make(chan int, 3)
	for range 3 {
		go postPNG(ts.URL+"/v1/models/colors/predict", img, codes)
	}
	waitFor(t, func() bool {
		_, b := do(t, "GET", ts.URL+"/metrics", "", nil, nil)
		return strings.Contains(string(b), `bitrun_queue_images{model="colors",version="1"} 3`)
	})
	for range 3 {
		if code := <-codes; code != 200 {
			t.Fatalf("request got %d", code)
		}
	}
	_, b := do(t, "GET", ts.URL+"/metrics", "", nil, nil)
	m := regexp.MustCompile(`bitrun_queue_duration_seconds_sum\{model="colors",version="1"\} (\S+)`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("no queue duration sum in\n%s", b)
	}
	// The first image waited the whole delay: a lower bound only.
	if sum, err := strconv.ParseFloat(string(m[1]), 64); err != nil || sum < 0.9 {
		t.Errorf("queue time sum %s s for three images behind a 1 s batch delay", m[1])
	}
	if !strings.Contains(string(b), `bitrun_queue_images{model="colors",version="1"} 0`) {
		t.Error("queue gauge not back to 0")
	}
}

// postPNG posts img to url as a PNG and sends the status code to codes (-1
// when the request fails); for requests a test runs in the background.
func postPNG(url string, img []byte, codes chan<- int) {
	resp, err := http.Post(url, "image/png", bytes.NewReader(img))
	if err != nil {
		codes <- -1
		return
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	codes <- resp.StatusCode
}

// waitFor polls cond until it holds, for 5 s at the most.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	testwait.Until(t, 5*time.Second, 5*time.Millisecond, func() error {
		if !cond() {
			return errors.New("condition not met")
		}
		return nil
	})
}

// TestCancelledNeverReachModel: a request whose client leaves while it is
// queued is dropped before the model runs.
func TestCancelledNeverReachModel(t *testing.T) {
	r := newColorRunner(t, 8)
	c, err := serve.New(r, serve.Options{MaxBatch: 4, BatchDelay: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r.hold()
	img := solid(8, 8, color.RGBA{R: 255, A: 255})
	first := make(chan error, 1)
	go func() { _, err := c.Classify(context.Background(), img); first <- err }()
	<-r.started // batch 1 (one image) is in the model
	ctx, cancel := context.WithCancel(context.Background())
	second := make(chan error, 1)
	go func() { _, err := c.Classify(ctx, img); second <- err }()
	waitFor(t, func() bool { return c.Queued() == 1 }) // it is queued
	cancel()
	if err := <-second; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled call returned %v", err)
	}
	r.release()
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	// A third call runs; the cancelled image must not be in its batch.
	if _, err := c.Classify(context.Background(), img); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(r.batchSizes()); got != "[1 1]" {
		t.Errorf("batches %s, want [1 1] (the cancelled image never runs)", got)
	}
}

// TestDeadline: a request still waiting at the inference deadline gets 504.
func TestDeadline(t *testing.T) {
	_, r, ts := newTestServer(t, serve.Config{RequestTimeout: 50 * time.Millisecond}, serve.Options{})
	r.hold()
	resp, body := do(t, "POST", ts.URL+"/v1/models/colors/predict", "image/png", pngBytes(solid(8, 8, color.White)), nil)
	if resp.StatusCode != 504 || !strings.Contains(string(body), "deadline") {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
}

// newShutdownServer is the colour model without batching delay on a server
// and a local listener, for the tests that run Serve and Shutdown
// themselves.
func newShutdownServer(t *testing.T) (*colorRunner, *serve.Classifier, *serve.Server, net.Listener) {
	t.Helper()
	r := newColorRunner(t, 8)
	c, err := serve.New(r, serve.Options{Name: "colors", BatchDelay: -1})
	if err != nil {
		t.Fatal(err)
	}
	srv := servetest.NewServer(t, serve.Config{}, c)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return r, c, srv, l
}

// TestGracefulShutdown: readiness turns 503 as soon as Shutdown starts,
// requests in flight complete, Shutdown returns within the grace period.
func TestGracefulShutdown(t *testing.T) {
	r, c, srv, l := newShutdownServer(t)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	base := "http://" + l.Addr().String()
	waitFor(t, func() bool {
		resp, err := http.Get(base + "/v2/health/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})

	r.hold()
	const inflight = 3
	codes := make(chan int, inflight)
	img := pngBytes(solid(8, 8, color.White))
	for range inflight {
		go postPNG(base+"/v1/models/colors/predict", img, codes)
	}
	<-r.started // one batch is in the model, the rest are queued
	waitFor(t, func() bool {
		rec := httptest.NewRecorder()
		srv.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		return strings.Contains(rec.Body.String(), "bitrun_http_requests_in_flight 4") // 3 + this one
	})
	shutdownDone := make(chan error, 1)
	start := time.Now()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		shutdownDone <- srv.Shutdown(ctx)
	}()
	// Readiness is 503 while draining (asked through the handler: the
	// listener is closed).
	waitFor(t, func() bool {
		rec := httptest.NewRecorder()
		srv.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/v2/health/ready", nil))
		return rec.Code == 503 && strings.Contains(rec.Body.String(), "shutting down")
	})
	select {
	case err := <-shutdownDone:
		t.Fatalf("Shutdown returned %v before in-flight requests finished", err)
	case <-time.After(50 * time.Millisecond):
	}
	r.release()
	for range inflight {
		if code := <-codes; code != 200 {
			t.Errorf("in-flight request got %d, want 200", code)
		}
	}
	if err := <-shutdownDone; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Shutdown took %v", d)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		t.Errorf("Serve returned %v", err)
	}
	if c.Ready() {
		t.Error("classifier still ready after Shutdown")
	}
	if _, err := c.Classify(context.Background(), solid(8, 8, color.White)); !errors.Is(err, serve.ErrNotReady) {
		t.Errorf("Classify after Shutdown: %v", err)
	}
}

// TestShutdownGraceExpires: a model stuck past the grace period is aborted
// and Shutdown returns the context's error instead of hanging.
func TestShutdownGraceExpires(t *testing.T) {
	r, _, srv, l := newShutdownServer(t)
	go srv.Serve(l)
	r.hold()
	done := make(chan struct{})
	go func() {
		defer close(done)
		resp, err := http.Post("http://"+l.Addr().String()+"/v1/models/colors/predict", "image/png", bytes.NewReader(pngBytes(solid(8, 8, color.White))))
		if err == nil {
			resp.Body.Close()
		}
	}()
	<-r.started
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := srv.Shutdown(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown: %v, want deadline exceeded", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Shutdown took %v past a 100ms grace", d)
	}
	<-done
}

func TestConcurrentClassify(t *testing.T) {
	r := newColorRunner(t, 8)
	c, err := serve.New(r, serve.Options{MaxBatch: 5, BatchDelay: time.Millisecond, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	colors := []color.RGBA{{R: 255, A: 255}, {G: 255, A: 255}, {B: 255, A: 255}}
	var wg sync.WaitGroup
	for i := range 60 {
		wg.Go(func() {
			preds, err := c.Classify(context.Background(), solid(10, 7, colors[i%3]))
			if err != nil {
				t.Error(err)
				return
			}
			if preds[0].Index != i%3 {
				t.Errorf("image %d classified as %d", i, preds[0].Index)
			}
		})
	}
	wg.Wait()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestNewRejects(t *testing.T) {
	if _, err := serve.New(newColorRunner(t, 8), serve.Options{Name: "../etc"}); err == nil {
		t.Error("bad name accepted")
	}
	r := newColorRunner(t, 8)
	c1, _ := serve.New(r, serve.Options{Name: "a"})
	c2, _ := serve.New(newColorRunner(t, 8), serve.Options{Name: "a"})
	defer c1.Close()
	defer c2.Close()
	if _, err := serve.NewServer(serve.Config{}, c1, c2); err == nil || !strings.Contains(err.Error(), "distinct") {
		t.Errorf("duplicate names: %v", err)
	}
	if _, err := serve.Open("http://example.com/m.onnx", serve.Options{}); err == nil || !strings.Contains(err.Error(), "local") {
		t.Errorf("remote model: %v", err)
	}
}

// TestLoading: a server built without models is live but not ready, and
// answers 503 on model routes until Add publishes the models.
func TestLoading(t *testing.T) {
	srv := servetest.NewServer(t, serve.Config{})
	ts := servetest.HTTP(t, srv)
	for path, want := range map[string]int{"/v2/health/live": 200, "/v2/health/ready": 503, "/healthz": 503, "/v2/models/colors": 503, "/v1/models": 200} {
		if resp, b := do(t, "GET", ts.URL+path, "", nil, nil); resp.StatusCode != want {
			t.Errorf("loading: GET %s = %d %s, want %d", path, resp.StatusCode, b, want)
		}
	}
	resp, b := do(t, "POST", ts.URL+"/v1/models/colors/predict", "image/png", pngBytes(solid(4, 4, color.White)), nil)
	if resp.StatusCode != 503 || !strings.Contains(string(b), "loading") || resp.Header.Get("Retry-After") == "" {
		t.Errorf("predict while loading: %d %s", resp.StatusCode, b)
	}
	c, err := serve.New(newColorRunner(t, 8), serve.Options{Name: "colors"})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Add(c); err != nil {
		t.Fatal(err)
	}
	if resp, b := do(t, "GET", ts.URL+"/v2/health/ready", "", nil, nil); resp.StatusCode != 200 {
		t.Errorf("after Add: %d %s", resp.StatusCode, b)
	}
	c2, _ := serve.New(newColorRunner(t, 8), serve.Options{Name: "colors"})
	if err := srv.Add(c2); err == nil {
		t.Error("duplicate name accepted by Add")
	}
	c2.Close()
	srv.Close()
	c3, _ := serve.New(newColorRunner(t, 8), serve.Options{Name: "other"})
	if err := srv.Add(c3); err == nil || c3.Ready() {
		t.Errorf("Add after Close: %v, ready %v", err, c3.Ready())
	}
}

// TestMaxInFlight: requests beyond Config.MaxInFlight get 503 at once.
func TestMaxInFlight(t *testing.T) {
	_, r, ts := newTestServer(t, serve.Config{MaxInFlight: 1}, serve.Options{BatchDelay: -1})
	r.hold()
	img := pngBytes(solid(8, 8, color.White))
	first := make(chan int, 1)
	go postPNG(ts.URL+"/v1/models/colors/predict", img, first)
	<-r.started
	resp, body := do(t, "POST", ts.URL+"/v1/models/colors/predict", "image/png", img, nil)
	if resp.StatusCode != 503 || !strings.Contains(string(body), "max-in-flight") {
		t.Errorf("second request: %d %s", resp.StatusCode, body)
	}
	r.release()
	if code := <-first; code != 200 {
		t.Errorf("first request: %d", code)
	}
}
