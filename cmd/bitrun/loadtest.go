package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"image/color"
	"io"
	"math"
	"mime/multipart"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/bitrun/bitrun/api"
	pb "github.com/bitrun/bitrun/api/inferencepb"
	"github.com/bitrun/bitrun/data"
)

// Bounds of a load test: it is a local measuring tool, not a flood generator.
const (
	loadMaxConcurrency = 256
	loadMaxRequests    = 100_000
	loadMaxBatch       = 256
)

// The protocols loadtest speaks.
const (
	protoPredict     = "predict"      // POST /v1/models/NAME/predict, the encoded image(s)
	protoInferJSON   = "infer-json"   // POST /v2/models/NAME/infer, FP32 as JSON numbers
	protoInferBinary = "infer-binary" // the same with the binary tensor data extension
	protoInferUint8  = "infer-uint8"  // the same with UINT8 [N, H, W, 3] image pixels, preprocessed by the server
	protoGRPC        = "grpc"         // inference.GRPCInferenceService/ModelInfer, raw_input_contents
)

var loadProtocols = []string{protoPredict, protoInferJSON, protoInferBinary, protoInferUint8, protoGRPC}

func newLoadtestCmd() *cobra.Command {
	var o loadOptions
	cmd := &cobra.Command{
		Use:   "loadtest --url URL --image FILE [flags]",
		Short: "Measure a local bitrun server: throughput, latency percentiles, status codes",
		Long: `Send --requests requests with --concurrency clients to a bitrun server on
this machine and print the throughput (requests/s and images/s), latency
percentiles (p50/p90/p99) and the count of each status code; --json prints
the same as JSON. Only loopback addresses are accepted, and the load is
bounded (at most 256 clients, 100000 requests, 256 images per request).

--protocol chooses what each request is:
  predict       POST .../predict with the encoded image (the default); with
                --batch N > 1, a multipart body of N "file" parts
  infer-json    POST /v2/models/NAME/infer, one FP32 [N, C, H, W] input as
                JSON numbers
  infer-binary  the same with the binary tensor data extension
  infer-uint8   the same with the images' decoded pixels, UINT8 [N, H, W, 3]
                (binary), which the server resizes and normalises; the
                --image files must then share one size
  grpc          KServe v2 gRPC ModelInfer at --grpc-addr, raw_input_contents
The infer and gRPC protocols send the images already preprocessed (FP32,
with the model's own resolution, mean and std read from GET /v2/models/NAME,
as the server would apply them), encoded once before the test, and ask for
the top --top-k classes through the classification extension, so the server
does the same work per image as predict minus the image decoding. --image
may be given several times; a request's N images cycle through them.

--url is the server's base URL (the model comes from --model, or is the only
one served) or a full .../v1/models/NAME/predict URL. It is used for the
model's metadata and /metrics in every protocol. When /metrics is reachable,
the mean batch size the server formed during the test is shown.`,
		Example: `  bitrun loadtest --url http://127.0.0.1:8080 --image cat.jpg --concurrency 32 --requests 2000
  bitrun loadtest --protocol grpc --grpc-addr 127.0.0.1:9001 --batch 16 --image cat.jpg --requests 100`,
		Args: cobra.NoArgs,
		RunE: runE(boundFlags(&o), runLoadtest),
	}
	f := cmd.Flags()
	f.StringVar(&o.URL, "url", "http://127.0.0.1:8080", "server base URL or predict URL (loopback only)")
	f.StringVar(&o.Model, "model", "", "model name (default: the only model served)")
	f.StringArrayVar(&o.Images, "image", nil, "image file sent with every request (repeat for several: a batch cycles through them)")
	f.StringVar(&o.Protocol, "protocol", protoPredict, "predict, infer-json, infer-binary, infer-uint8 or grpc")
	f.StringVar(&o.GRPCAddr, "grpc-addr", "", "the server's gRPC address HOST:PORT (loopback only), for --protocol grpc")
	f.IntVar(&o.GRPCConns, "grpc-conns", 1, "with --protocol grpc: HTTP/2 connections the clients' calls are spread over, round-robin (1 to --concurrency)")
	f.IntVar(&o.Batch, "batch", 1, "images per request (1-256)")
	f.IntVar(&o.Concurrency, "concurrency", 32, "concurrent clients (1-256)")
	f.IntVar(&o.Requests, "requests", 2000, "total requests (1-100000)")
	f.IntVar(&o.TopK, "top-k", 5, "top_k asked for")
	f.DurationVar(&o.Timeout, "timeout", 60*time.Second, "per-request timeout")
	f.StringVar(&o.TokenFile, "token-file", "", "file holding the server's bearer token")
	f.BoolVar(&o.JSON, "json", false, "print JSON")
	return cmd
}

// loadOptions are loadtest's settings, bound to its flags.
type loadOptions struct {
	URL         string
	Model       string // "" for the only model served
	Images      []string
	Protocol    string
	GRPCAddr    string
	GRPCConns   int // gRPC connections the clients share round-robin
	Batch       int
	Concurrency int
	Requests    int
	TopK        int
	Timeout     time.Duration
	TokenFile   string
	JSON        bool
}

func (o *loadOptions) validate() error {
	switch {
	case len(o.Images) == 0:
		return usagef("--image is required")
	case !slices.Contains(loadProtocols, o.Protocol):
		return usagef("--protocol %q: want one of %s", o.Protocol, strings.Join(loadProtocols, ", "))
	case o.Protocol == protoGRPC && o.GRPCAddr == "":
		return usagef("--protocol grpc needs --grpc-addr HOST:PORT (bitrun serve --grpc-addr)")
	case o.Protocol != protoGRPC && o.GRPCAddr != "":
		return usagef("--grpc-addr is only used with --protocol grpc")
	case o.GRPCConns < 1 || o.GRPCConns > max(o.Concurrency, 1):
		return usagef("--grpc-conns %d: want 1 to --concurrency (%d)", o.GRPCConns, o.Concurrency)
	case o.Protocol != protoGRPC && o.GRPCConns != 1:
		return usagef("--grpc-conns is only used with --protocol grpc")
	case o.Batch < 1 || o.Batch > loadMaxBatch:
		return usagef("--batch %d: want 1 to %d", o.Batch, loadMaxBatch)
	case o.Concurrency < 1 || o.Concurrency > loadMaxConcurrency:
		return usagef("--concurrency %d: want 1 to %d", o.Concurrency, loadMaxConcurrency)
	case o.Requests < 1 || o.Requests > loadMaxRequests:
		return usagef("--requests %d: want 1 to %d", o.Requests, loadMaxRequests)
	case o.TopK < 1:
		return usagef("--top-k %d: must be positive", o.TopK)
	case o.Timeout <= 0:
		return usagef("--timeout %v: must be positive", o.Timeout)
	}
	return nil
}

// loadReport is what loadtest prints.
type loadReport struct {
	URL          string         `json:"url"`
	Protocol     string         `json:"protocol"`
	Batch        int            `json:"batch"`
	Requests     int            `json:"requests"`
	Concurrency  int            `json:"concurrency"`
	Seconds      float64        `json:"seconds"`
	Throughput   float64        `json:"requests_per_sec"`
	ImagesPerSec float64        `json:"images_per_sec"`
	LatencyMs    loadLatency    `json:"latency_ms"`
	Status       map[string]int `json:"status"` // "200", "503", ... (gRPC: "OK", "Unavailable", ...), "error" (no answer)
	OK           int            `json:"ok"`
	Lost         int            `json:"lost"` // requests without an answer
	Invalid      int            `json:"invalid"`
	MeanBatch    float64        `json:"mean_batch,omitempty"` // from /metrics, 0 when unknown
	Batches      float64        `json:"batches,omitempty"`
}

type loadLatency struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
}

// loadOutcome is how one request ended.
type loadOutcome struct {
	code    string // HTTP status ("200") or gRPC code name ("OK"); "" when no answer came back
	ok      bool   // a success status with a valid answer
	invalid bool   // a success status whose answer is not what was asked
}

// loadSender sends one prepared request.
type loadSender interface {
	send(ctx context.Context) loadOutcome
	target() string // what the report's url line shows
}

func runLoadtest(ctx context.Context, o loadOptions, stdout, _ io.Writer) error {
	base, err := url.Parse(o.URL)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return usagef("--url %q: want http://HOST:PORT[/...]", o.URL)
	}
	if err := requireLoopback(ctx, "--url", base.Hostname()); err != nil {
		return err
	}
	if o.Protocol == protoGRPC {
		host, _, err := net.SplitHostPort(o.GRPCAddr)
		if err != nil {
			return usagef("--grpc-addr %q: want HOST:PORT", o.GRPCAddr)
		}
		if err := requireLoopback(ctx, "--grpc-addr", host); err != nil {
			return err
		}
	}
	imgs := make([][]byte, len(o.Images))
	for i, p := range o.Images {
		if imgs[i], err = os.ReadFile(p); err != nil {
			return fmt.Errorf("loadtest: %w", err)
		}
	}
	token := ""
	if o.TokenFile != "" {
		b, err := os.ReadFile(o.TokenFile)
		if err != nil {
			return fmt.Errorf("loadtest: token: %w", err)
		}
		token = strings.TrimSpace(string(b))
	}
	hc := loadtestClient(o.Timeout, o.Concurrency)
	defer hc.CloseIdleConnections()

	t, err := loadTargets(ctx, hc, base, o.Model, token)
	if err != nil {
		return err
	}
	s, closeSender, err := newLoadSender(ctx, hc, o, t, token, imgs)
	if err != nil {
		return err
	}
	defer closeSender()

	before, _ := scrapeBatches(ctx, hc, t.root, token)
	elapsed, lat, outs, err := loadRun(ctx, s, o.Concurrency, o.Requests)
	if err != nil {
		return err
	}
	rep := summarizeLoad(s.target(), o.Concurrency, elapsed, lat, outs)
	rep.Protocol, rep.Batch = o.Protocol, o.Batch
	rep.ImagesPerSec = rep.Throughput * float64(o.Batch)
	if after, ok := scrapeBatches(ctx, hc, t.root, token); ok {
		rep.Batches = after[1] - before[1]
		if rep.Batches > 0 {
			rep.MeanBatch = (after[0] - before[0]) / rep.Batches
		}
	}
	if o.JSON {
		return writeJSON(stdout, rep)
	}
	return writeLoadReport(stdout, rep)
}

// loadRun sends total requests through s from conc clients.
func loadRun(ctx context.Context, s loadSender, conc, total int) (time.Duration, []time.Duration, []loadOutcome, error) {
	var next atomic.Int64
	lat := make([]time.Duration, total)
	outs := make([]loadOutcome, total)
	var wg sync.WaitGroup
	start := time.Now()
	for range conc {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= total || ctx.Err() != nil {
					return
				}
				t0 := time.Now()
				outs[i] = s.send(ctx)
				lat[i] = time.Since(t0)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := ctx.Err(); err != nil {
		return 0, nil, nil, fmt.Errorf("loadtest: interrupted after %d requests: %w", min(int(next.Load()), total), err)
	}
	return elapsed, lat, outs, nil
}

// loopbackDialer refuses every address that is not loopback, whatever a
// name resolves to when the connection is made.
func loopbackDialer() *net.Dialer {
	return &net.Dialer{Timeout: 10 * time.Second, Control: func(_, address string, _ syscall.RawConn) error {
		host, _, err := net.SplitHostPort(address)
		if err != nil {
			return err
		}
		if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
			return fmt.Errorf("loadtest: refusing to connect to %s: not a loopback address", address)
		}
		return nil
	}}
}

// loadtestClient is loadtest's HTTP client: it follows no redirects (a 3xx
// is counted as the answer, so a server cannot send the load elsewhere) and
// it dials loopback addresses only (loopbackDialer).
func loadtestClient(timeout time.Duration, conc int) *http.Client {
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			Proxy: nil, DialContext: loopbackDialer().DialContext,
			MaxIdleConns: conc, MaxIdleConnsPerHost: conc, MaxConnsPerHost: conc, IdleConnTimeout: 30 * time.Second,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// requireLoopback refuses hosts (given by flag) that are not this machine.
func requireLoopback(ctx context.Context, flag, host string) error {
	const only = "loadtest only targets loopback addresses (127.0.0.0/8, ::1, localhost)"
	if host == "" {
		return usagef("%s has no host", flag)
	}
	if ip := net.ParseIP(host); ip != nil {
		if !ip.IsLoopback() {
			return usagef("%s %s: %s", flag, host, only)
		}
		return nil
	}
	if host != "localhost" && !strings.HasSuffix(host, ".localhost") {
		return usagef("%s %s: %s", flag, host, only)
	}
	addrs, err := net.DefaultResolver.LookupIPAddr(ctx, host)
	if err != nil {
		return fmt.Errorf("loadtest: resolving %s: %w", host, err)
	}
	for _, a := range addrs {
		if !a.IP.IsLoopback() {
			return usagef("%s %s resolves to %s, not a loopback address", flag, host, a.IP)
		}
	}
	return nil
}

// loadTarget is where the load goes.
type loadTarget struct {
	root    string // server base URL
	model   string // model name
	predict string // predict URL
}

// loadTargets works out the model, the predict URL and the server root
// from --url and --model (asking /v1/models when the model is not named).
func loadTargets(ctx context.Context, hc *http.Client, base *url.URL, model, token string) (loadTarget, error) {
	u := *base
	u.RawQuery, u.Fragment = "", ""
	path := strings.TrimSuffix(u.Path, "/")
	if i := strings.Index(path, "/v1/models/"); i >= 0 && strings.HasSuffix(path, "/predict") {
		u.Path = path[:i]
		name, _, _ := strings.Cut(strings.TrimSuffix(path[i+len("/v1/models/"):], "/predict"), "/")
		if n, err := url.PathUnescape(name); err == nil {
			name = n
		}
		return loadTarget{root: u.String(), model: name, predict: base.Scheme + "://" + base.Host + path}, nil
	}
	u.Path = path
	root := u.String()
	if model == "" {
		var list struct {
			Models []struct {
				Name string `json:"name"`
			} `json:"models"`
		}
		if err := loadGetJSON(ctx, hc, root+"/v1/models", token, &list); err != nil {
			return loadTarget{}, fmt.Errorf("loadtest: listing models (or give --model): %w", err)
		}
		if len(list.Models) != 1 {
			names := make([]string, len(list.Models))
			for i, m := range list.Models {
				names[i] = m.Name
			}
			return loadTarget{}, usagef("the server has %d models (%s): name one with --model", len(names), strings.Join(names, ", "))
		}
		model = list.Models[0].Name
	}
	return loadTarget{root: root, model: model, predict: root + "/v1/models/" + url.PathEscape(model) + "/predict"}, nil
}

func loadGetJSON(ctx context.Context, hc *http.Client, u, token string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", u, resp.Status, bytes.TrimSpace(b[:min(len(b), 200)]))
	}
	return json.Unmarshal(b, out)
}

// newLoadSender prepares the request every client sends, encoded once.
func newLoadSender(ctx context.Context, hc *http.Client, o loadOptions, t loadTarget, token string, imgs [][]byte) (loadSender, func(), error) {
	if o.Protocol == protoPredict {
		s, err := newPredictSender(hc, t.predict, token, imgs, o.Batch, o.TopK)
		return s, func() {}, err
	}
	var md api.ModelMetadata
	if err := loadGetJSON(ctx, hc, t.root+"/v2/models/"+url.PathEscape(t.model), token, &md); err != nil {
		return nil, nil, fmt.Errorf("loadtest: model metadata: %w", err)
	}
	in, err := loadInput(md, imgs, o.Batch)
	if err != nil {
		return nil, nil, err
	}
	if len(md.Inputs) != 1 || len(md.Outputs) == 0 {
		return nil, nil, fmt.Errorf("loadtest: model %s has %d inputs and %d outputs; want 1 input", t.model, len(md.Inputs), len(md.Outputs))
	}
	k := min(o.TopK, max(md.Classes, 1))
	shape := []int64{int64(o.Batch), int64(md.Preprocessing.Channels), int64(md.Preprocessing.Resolution), int64(md.Preprocessing.Resolution)}
	if o.Protocol == protoGRPC {
		s, err := newGRPCSender(o.GRPCAddr, o.GRPCConns, token, o.Timeout, &pb.ModelInferRequest{
			ModelName:        t.model,
			Inputs:           []*pb.ModelInferRequest_InferInputTensor{{Name: md.Inputs[0].Name, Datatype: "FP32", Shape: shape}},
			RawInputContents: [][]byte{fp32LE(in)},
			Outputs:          []*pb.ModelInferRequest_InferRequestedOutputTensor{{Name: md.Outputs[0].Name, Parameters: map[string]*pb.InferParameter{api.ParamClassification: {ParameterChoice: &pb.InferParameter_Int64Param{Int64Param: int64(k)}}}}},
		}, o.Batch)
		if err != nil {
			return nil, nil, err
		}
		return s, s.close, nil
	}
	var tensor api.Tensor
	outParams := api.Parameters{api.ParamClassification: k}
	switch o.Protocol {
	case protoInferBinary:
		tensor = api.BinaryFP32(md.Inputs[0].Name, shape, in)
		outParams[api.ParamBinaryData] = true
	case protoInferUint8:
		px, h, w, err := loadPixels(imgs, o.Batch)
		if err != nil {
			return nil, nil, err
		}
		tensor = api.Uint8(md.Inputs[0].Name, []int64{int64(o.Batch), int64(h), int64(w), 3}, px, true)
		outParams[api.ParamBinaryData] = true
	default:
		tensor = api.FP32(md.Inputs[0].Name, shape, in)
	}
	req := api.InferRequest{Inputs: []api.Tensor{tensor}, Outputs: []api.RequestedOutput{{Name: md.Outputs[0].Name, Parameters: outParams}}}
	body, headerLen, err := api.EncodeBody(req, req.Inputs)
	if err != nil {
		return nil, nil, fmt.Errorf("loadtest: encoding the infer request: %w", err)
	}
	return &inferSender{hc: hc, url: t.root + "/v2/models/" + url.PathEscape(t.model) + "/infer", token: token,
		body: body, headerLen: headerLen, rows: o.Batch}, func() {}, nil
}

// loadPixels decodes a batch of n images, cycling through imgs, into RGB
// pixels [n, h, w, 3]; the images must share one size.
func loadPixels(imgs [][]byte, n int) (px []byte, h, w int, err error) {
	one := make([][]byte, len(imgs))
	for i, b := range imgs {
		m, err := data.Decode(bytes.NewReader(b), 0)
		if err != nil {
			return nil, 0, 0, fmt.Errorf("loadtest: image %d: %w", i+1, err)
		}
		r := m.Bounds()
		if i == 0 {
			h, w = r.Dy(), r.Dx()
		} else if r.Dy() != h || r.Dx() != w {
			return nil, 0, 0, usagef("--protocol %s sends one UINT8 [N, H, W, 3] tensor: the --image files must share one size (image 1 is %dx%d, image %d %dx%d)",
				protoInferUint8, w, h, i+1, r.Dx(), r.Dy())
		}
		one[i] = make([]byte, 0, h*w*3)
		for y := r.Min.Y; y < r.Max.Y; y++ {
			for x := r.Min.X; x < r.Max.X; x++ {
				c := color.RGBAModel.Convert(m.At(x, y)).(color.RGBA)
				one[i] = append(one[i], c.R, c.G, c.B)
			}
		}
	}
	for i := range n {
		px = append(px, one[i%len(one)]...)
	}
	return px, h, w, nil
}

// loadInput is a batch of n images, cycling through imgs, with the model's
// preprocessing as its metadata states it: FP32 [n, C, H, W].
func loadInput(md api.ModelMetadata, imgs [][]byte, n int) ([]float32, error) {
	p := md.Preprocessing
	if p.Resolution < 1 || (p.Channels != 1 && p.Channels != 3) || len(p.Mean) < p.Channels || len(p.Std) < p.Channels {
		return nil, fmt.Errorf("loadtest: model %s states no usable preprocessing (%+v)", md.Name, p)
	}
	var norm data.Norm
	for c := range 3 {
		norm.Mean[c], norm.Std[c] = p.Mean[min(c, p.Channels-1)], p.Std[min(c, p.Channels-1)]
	}
	size := p.Size()
	one := make([][]float32, len(imgs))
	for i, b := range imgs {
		one[i] = make([]float32, size)
		if err := data.DecodeEvalTensor(b, 0, p.Resolution, p.Channels, norm, one[i]); err != nil {
			return nil, fmt.Errorf("loadtest: image %d: %w", i+1, err)
		}
	}
	x := make([]float32, 0, n*size)
	for i := range n {
		x = append(x, one[i%len(one)]...)
	}
	return x, nil
}

func fp32LE(x []float32) []byte {
	b := make([]byte, 4*len(x))
	for i, v := range x {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	return b
}

// predictSender posts the encoded image (batch 1) or a multipart body of
// batch "file" parts to the predict route.
type predictSender struct {
	hc                *http.Client
	url, token, ctype string
	body              []byte
	rows              int
}

func newPredictSender(hc *http.Client, predictURL, token string, imgs [][]byte, batch, k int) (*predictSender, error) {
	s := &predictSender{hc: hc, url: predictURL + "?" + url.Values{"top_k": {strconv.Itoa(k)}}.Encode(), token: token, rows: batch}
	if batch == 1 {
		s.body = imgs[0]
		s.ctype = http.DetectContentType(s.body)
		if !strings.HasPrefix(s.ctype, "image/") {
			s.ctype = "application/octet-stream"
		}
		return s, nil
	}
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	for i := range batch {
		w, err := mw.CreateFormFile("file", fmt.Sprintf("image%d", i))
		if err != nil {
			return nil, err
		}
		w.Write(imgs[i%len(imgs)])
	}
	if err := mw.Close(); err != nil {
		return nil, err
	}
	s.body, s.ctype = b.Bytes(), mw.FormDataContentType()
	return s, nil
}

func (s *predictSender) target() string { return s.url }

func (s *predictSender) send(ctx context.Context) loadOutcome {
	code, b, _ := loadPost(ctx, s.hc, s.url, s.ctype, s.token, nil, s.body)
	o := loadOutcome{code: code}
	if code == "200" {
		o.ok = predictAnswers(b) == s.rows
		o.invalid = !o.ok
	}
	return o
}

// predictAnswers is the number of images a predict answer holds (one
// "predictions" list, or one "results" entry per image), 0 when it is not one.
func predictAnswers(b []byte) int {
	var pr struct {
		Predictions []json.RawMessage `json:"predictions"`
		Results     []struct {
			Predictions []json.RawMessage `json:"predictions"`
		} `json:"results"`
	}
	if json.Unmarshal(b, &pr) != nil {
		return 0
	}
	if len(pr.Results) > 0 {
		for _, r := range pr.Results {
			if len(r.Predictions) == 0 {
				return 0
			}
		}
		return len(pr.Results)
	}
	if len(pr.Predictions) > 0 {
		return 1
	}
	return 0
}

// loadPost posts body and returns the status code ("" with no answer),
// the answer's body and its Inference-Header-Content-Length.
func loadPost(ctx context.Context, hc *http.Client, u, contentType, token string, header http.Header, body []byte) (code string, answer []byte, headerLen string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return "", nil, ""
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", contentType)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", nil, ""
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return "", nil, ""
	}
	return strconv.Itoa(resp.StatusCode), b, resp.Header.Get(api.HeaderInferenceContentLength)
}

// inferSender posts a v2 infer request (JSON, or JSON and binary data).
type inferSender struct {
	hc         *http.Client
	url, token string
	body       []byte
	headerLen  int // -1: all JSON
	rows       int
}

func (s *inferSender) target() string { return s.url }

func (s *inferSender) send(ctx context.Context) loadOutcome {
	ctype, header := "application/json", http.Header(nil)
	if s.headerLen >= 0 {
		ctype = "application/octet-stream"
		header = http.Header{api.HeaderInferenceContentLength: {strconv.Itoa(s.headerLen)}}
	}
	code, b, hl := loadPost(ctx, s.hc, s.url, ctype, s.token, header, s.body)
	o := loadOutcome{code: code}
	if code == "200" {
		o.ok = inferAnswerRows(b, hl) == s.rows
		o.invalid = !o.ok
	}
	return o
}

// inferAnswerRows decodes an infer answer (JSON, or JSON and binary data
// when headerLen is set) and returns the number of rows of its first
// output, a classification, or -1 when it is not one.
func inferAnswerRows(b []byte, headerLen string) int {
	r, err := api.DecodeResponse(b, headerLen)
	if err != nil || len(r.Outputs) == 0 || len(r.Outputs[0].Shape) == 0 {
		return -1
	}
	s, err := r.Outputs[0].Strings()
	if err != nil || len(s) == 0 {
		return -1
	}
	return int(r.Outputs[0].Shape[0])
}

// grpcSender calls ModelInfer over --grpc-conns HTTP/2 connections dialled
// through loopbackDialer, the clients' calls taking them in turn (and
// multiplexed on each).
type grpcSender struct {
	conns   []*grpc.ClientConn
	clients []pb.GRPCInferenceServiceClient
	next    atomic.Uint64
	addr    string
	req     *pb.ModelInferRequest
	token   string
	timeout time.Duration
	rows    int
}

func newGRPCSender(addr string, conns int, token string, timeout time.Duration, req *pb.ModelInferRequest, rows int) (*grpcSender, error) {
	d := loopbackDialer()
	s := &grpcSender{addr: addr, req: req, token: token, timeout: timeout, rows: rows}
	for range conns {
		conn, err := grpc.NewClient("passthrough:///"+addr,
			grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithContextDialer(func(ctx context.Context, a string) (net.Conn, error) { return d.DialContext(ctx, "tcp", a) }),
			grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20), grpc.MaxCallSendMsgSize(64<<20)))
		if err != nil {
			s.close()
			return nil, fmt.Errorf("loadtest: --grpc-addr %s: %w", addr, err)
		}
		s.conns = append(s.conns, conn)
		s.clients = append(s.clients, pb.NewGRPCInferenceServiceClient(conn))
	}
	return s, nil
}

func (s *grpcSender) close() {
	for _, c := range s.conns {
		c.Close()
	}
}

func (s *grpcSender) target() string {
	return "grpc://" + s.addr + "/inference.GRPCInferenceService/ModelInfer (" + s.req.GetModelName() + ")"
}

func (s *grpcSender) send(ctx context.Context) loadOutcome {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if s.token != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+s.token)
	}
	client := s.clients[(s.next.Add(1)-1)%uint64(len(s.clients))]
	resp, err := client.ModelInfer(ctx, s.req)
	if err != nil {
		st, ok := status.FromError(err)
		if !ok {
			return loadOutcome{}
		}
		return loadOutcome{code: st.Code().String()}
	}
	o := loadOutcome{code: "OK"}
	outs, raw := resp.GetOutputs(), resp.GetRawOutputContents()
	o.ok = len(outs) > 0 && len(raw) == len(outs) && len(outs[0].GetShape()) > 0 && int(outs[0].GetShape()[0]) == s.rows && len(raw[0]) > 0
	o.invalid = !o.ok
	return o
}

var batchMetric = regexp.MustCompile(`(?m)^bitrun_batch_size_(sum|count)\{[^}]*\} (\S+)$`)

// scrapeBatches sums bitrun_batch_size_sum and _count over models from
// /metrics; ok is false when they cannot be read.
func scrapeBatches(ctx context.Context, hc *http.Client, root, token string) ([2]float64, bool) {
	var v [2]float64
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, root+"/metrics", nil)
	if err != nil {
		return v, false
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return v, false
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil || resp.StatusCode != http.StatusOK {
		return v, false
	}
	found := false
	for _, m := range batchMetric.FindAllStringSubmatch(string(b), -1) {
		x, err := strconv.ParseFloat(m[2], 64)
		if err != nil {
			continue
		}
		found = true
		if m[1] == "sum" {
			v[0] += x
		} else {
			v[1] += x
		}
	}
	return v, found
}

func summarizeLoad(u string, conc int, elapsed time.Duration, lat []time.Duration, outs []loadOutcome) loadReport {
	rep := loadReport{URL: u, Requests: len(lat), Concurrency: conc, Seconds: elapsed.Seconds(), Status: map[string]int{}}
	if s := elapsed.Seconds(); s > 0 {
		rep.Throughput = float64(len(lat)) / s
	}
	ms := make([]float64, len(lat))
	var sum float64
	for i, d := range lat {
		ms[i] = float64(d.Microseconds()) / 1000
		sum += ms[i]
		o := outs[i]
		switch {
		case o.code == "":
			rep.Status["error"]++
			rep.Lost++
		default:
			rep.Status[o.code]++
		}
		if o.ok {
			rep.OK++
		}
		if o.invalid {
			rep.Invalid++
		}
	}
	sort.Float64s(ms)
	if len(ms) > 0 {
		rep.LatencyMs = loadLatency{P50: percentile(ms, 0.50), P90: percentile(ms, 0.90), P99: percentile(ms, 0.99),
			Max: ms[len(ms)-1], Mean: sum / float64(len(ms))}
	}
	return rep
}

func writeLoadReport(w io.Writer, r loadReport) error {
	var b strings.Builder
	fmt.Fprintf(&b, "url          %s\n", r.URL)
	fmt.Fprintf(&b, "protocol     %s, %d image(s) per request\n", r.Protocol, r.Batch)
	fmt.Fprintf(&b, "requests     %d (concurrency %d) in %.2fs\n", r.Requests, r.Concurrency, r.Seconds)
	fmt.Fprintf(&b, "throughput   %.1f requests/s, %.1f images/s\n", r.Throughput, r.ImagesPerSec)
	l := r.LatencyMs
	fmt.Fprintf(&b, "latency ms   p50 %.2f  p90 %.2f  p99 %.2f  max %.2f  mean %.2f\n", l.P50, l.P90, l.P99, l.Max, l.Mean)
	codes := make([]string, 0, len(r.Status))
	for c := range r.Status {
		codes = append(codes, c)
	}
	slices.Sort(codes)
	parts := make([]string, len(codes))
	for i, c := range codes {
		parts[i] = fmt.Sprintf("%s: %d", c, r.Status[c])
	}
	fmt.Fprintf(&b, "status       %s\n", strings.Join(parts, "  "))
	fmt.Fprintf(&b, "ok           %d   lost %d   invalid answers %d\n", r.OK, r.Lost, r.Invalid)
	if r.Batches > 0 {
		fmt.Fprintf(&b, "batches      %.0f (mean size %.2f, from /metrics)\n", r.Batches, r.MeanBatch)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
