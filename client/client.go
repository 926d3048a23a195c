package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// MaxResponseBytes caps the response bodies the client reads.
const MaxResponseBytes = 64 << 20

// Client calls one bitrun server. It is safe for concurrent use.
type Client struct {
	base      *url.URL
	hc        *http.Client
	token     string
	retries   int
	maxWait   time.Duration
	userAgent string
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient sets the http.Client (default: one with a 60s timeout).
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.hc = hc } }

// WithToken sends "Authorization: Bearer token" with every request.
func WithToken(token string) Option { return func(c *Client) { c.token = token } }

// WithRetries retries a request up to n times when the server answers 503
// (queue full, not ready), waiting its Retry-After (at most maxWait; 0 means
// 5s) between tries.
func WithRetries(n int, maxWait time.Duration) Option {
	return func(c *Client) {
		c.retries = n
		if maxWait > 0 {
			c.maxWait = maxWait
		}
	}
}

// WithUserAgent sets the User-Agent header.
func WithUserAgent(ua string) Option { return func(c *Client) { c.userAgent = ua } }

// New returns a client for the server at baseURL (e.g.
// "http://127.0.0.1:8080"; a path prefix is kept, for servers mounted under
// one).
func New(baseURL string, opts ...Option) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("client: base URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("client: base URL %q: want http(s)://host[:port][/prefix]", baseURL)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawPath = ""
	u.RawQuery, u.Fragment = "", ""
	c := &Client{base: u, hc: &http.Client{Timeout: 60 * time.Second}, maxWait: 5 * time.Second, userAgent: "bitrun-client"}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// Error is a non-2xx answer from the server.
type Error struct {
	StatusCode int           // HTTP status
	Message    string        // the server's {"error": ...} message, or the body's start
	RequestID  string        // X-Request-Id of the answer
	RetryAfter time.Duration // from Retry-After, 0 when absent
}

func (e *Error) Error() string {
	return fmt.Sprintf("client: %d %s: %s", e.StatusCode, http.StatusText(e.StatusCode), e.Message)
}

// Temporary reports whether retrying later may succeed (503, 504, 429).
func (e *Error) Temporary() bool {
	return e.StatusCode == http.StatusServiceUnavailable || e.StatusCode == http.StatusGatewayTimeout ||
		e.StatusCode == http.StatusTooManyRequests
}

// StatusCode returns the HTTP status of an *Error in err's chain, or 0.
func StatusCode(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.StatusCode
	}
	return 0
}

// Prediction is one class of a top-k answer.
type Prediction struct {
	Label string  `json:"label"`
	Index int     `json:"index"`
	Score float64 `json:"score"`
}

// Result is the answer for one image.
type Result struct {
	File        string       `json:"file,omitempty"`
	Predictions []Prediction `json:"predictions"`
}

// PredictResponse is the answer of a predict call; Predictions are those of
// the first image, Results one per image in order.
type PredictResponse struct {
	Model       string       `json:"model"`
	ID          string       `json:"id"`
	Predictions []Prediction `json:"predictions"`
	Results     []Result     `json:"results"`
}

// File is one image for PredictFiles.
type File struct {
	Name string
	Data []byte
}

// Predict sends one encoded image (JPEG, PNG, GIF, BMP, WebP) as the raw
// body and returns the top k classes (k <= 0: the server's default).
func (c *Client) Predict(ctx context.Context, model string, image []byte, k int) (*PredictResponse, error) {
	ct := http.DetectContentType(image)
	if !strings.HasPrefix(ct, "image/") {
		ct = "application/octet-stream"
	}
	var out PredictResponse
	err := c.do(ctx, http.MethodPost, c.predictPath(model, k), ct, image, &out)
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// PredictFiles sends several images in one multipart/form-data request
// (parts named "file"); the server batches them together.
func (c *Client) PredictFiles(ctx context.Context, model string, files []File, k int) (*PredictResponse, error) {
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	for _, f := range files {
		w, err := mw.CreateFormFile("file", f.Name)
		if err != nil {
			return nil, fmt.Errorf("client: %w", err)
		}
		if _, err := w.Write(f.Data); err != nil {
			return nil, fmt.Errorf("client: %w", err)
		}
	}
	if err := mw.Close(); err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	var out PredictResponse
	if err := c.do(ctx, http.MethodPost, c.predictPath(model, k), mw.FormDataContentType(), b.Bytes(), &out); err != nil {
		return nil, err
	}
	return &out, nil
}

func (c *Client) predictPath(model string, k int) string {
	p := "/v1/models/" + url.PathEscape(model) + "/predict"
	if k > 0 {
		p += "?top_k=" + strconv.Itoa(k)
	}
	return p
}

// Tensor is a KServe v2 tensor with FP32 data, row-major.
type Tensor struct {
	Name     string    `json:"name"`
	Datatype string    `json:"datatype"`
	Shape    []int64   `json:"shape"`
	Data     []float32 `json:"data"`
}

// InferRequest is a KServe v2 infer request; Outputs empty means all.
type InferRequest struct {
	ID      string   `json:"id,omitempty"`
	Inputs  []Tensor `json:"inputs"`
	Outputs []string `json:"-"`
}

// InferResponse is a KServe v2 infer answer.
type InferResponse struct {
	ModelName    string   `json:"model_name"`
	ModelVersion string   `json:"model_version"`
	ID           string   `json:"id"`
	Outputs      []Tensor `json:"outputs"`
}

// Output returns the output tensor with the given name, or nil.
func (r *InferResponse) Output(name string) *Tensor {
	for i := range r.Outputs {
		if r.Outputs[i].Name == name {
			return &r.Outputs[i]
		}
	}
	return nil
}

// Infer sends preprocessed tensors to POST /v2/models/{model}/infer.
func (c *Client) Infer(ctx context.Context, model string, req *InferRequest) (*InferResponse, error) {
	type named struct {
		Name string `json:"name"`
	}
	body := struct {
		*InferRequest
		Outputs []named `json:"outputs,omitempty"`
	}{InferRequest: req}
	for _, o := range req.Outputs {
		body.Outputs = append(body.Outputs, named{o})
	}
	b, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("client: encoding infer request: %w", err)
	}
	var out InferResponse
	if err := c.do(ctx, http.MethodPost, "/v2/models/"+url.PathEscape(model)+"/infer", "application/json", b, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// TensorMetadata describes a model input or output.
type TensorMetadata struct {
	Name     string  `json:"name"`
	Datatype string  `json:"datatype"`
	Shape    []int64 `json:"shape"`
}

// Preprocessing is how the server turns an image into the model input.
type Preprocessing struct {
	Resolution int       `json:"resolution"`
	Channels   int       `json:"channels"`
	Mean       []float32 `json:"mean"`
	Std        []float32 `json:"std"`
	Layout     string    `json:"layout"`
	Resize     string    `json:"resize"`
}

// ModelMetadata is GET /v2/models/{model}.
type ModelMetadata struct {
	Name          string           `json:"name"`
	Versions      []string         `json:"versions"`
	Platform      string           `json:"platform"`
	Inputs        []TensorMetadata `json:"inputs"`
	Outputs       []TensorMetadata `json:"outputs"`
	Classes       int              `json:"classes"`
	Labels        []string         `json:"labels"`
	Preprocessing Preprocessing    `json:"preprocessing"`
	File          string           `json:"file"`
	SHA256        string           `json:"sha256"`
	MaxBatch      int              `json:"max_batch"`
	Ready         bool             `json:"ready"`
}

// Metadata returns a model's metadata.
func (c *Client) Metadata(ctx context.Context, model string) (*ModelMetadata, error) {
	var out ModelMetadata
	if err := c.do(ctx, http.MethodGet, "/v2/models/"+url.PathEscape(model), "", nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Model is one entry of Models.
type Model struct {
	Name  string `json:"name"`
	Ready bool   `json:"ready"`
}

// Models lists the served models.
func (c *Client) Models(ctx context.Context) ([]Model, error) {
	var out struct {
		Models []Model `json:"models"`
	}
	if err := c.do(ctx, http.MethodGet, "/v1/models", "", nil, &out); err != nil {
		return nil, err
	}
	return out.Models, nil
}

// Live returns nil when the server answers its liveness probe.
func (c *Client) Live(ctx context.Context) error {
	return c.do(ctx, http.MethodGet, "/v2/health/live", "", nil, nil)
}

// Ready returns nil when every model is loaded and warmed and the server is
// not shutting down; otherwise an *Error with status 503.
func (c *Client) Ready(ctx context.Context) error {
	return c.do(ctx, http.MethodGet, "/v2/health/ready", "", nil, nil)
}

// ModelReady is Ready for one model.
func (c *Client) ModelReady(ctx context.Context, model string) error {
	return c.do(ctx, http.MethodGet, "/v2/models/"+url.PathEscape(model)+"/ready", "", nil, nil)
}

// do sends a request (retrying 503s as configured) and decodes a 2xx JSON
// answer into out (when not nil).
func (c *Client) do(ctx context.Context, method, path, contentType string, body []byte, out any) error {
	full := c.base.String() + path // path segments are already escaped
	for attempt := 0; ; attempt++ {
		err := c.once(ctx, method, full, contentType, body, out)
		var e *Error
		if attempt >= c.retries || !errors.As(err, &e) || e.StatusCode != http.StatusServiceUnavailable {
			return err
		}
		wait := e.RetryAfter
		if wait <= 0 {
			wait = 100 * time.Millisecond
		}
		wait = min(wait, c.maxWait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("client: %w (after %w)", ctx.Err(), err)
		case <-t.C:
		}
	}
}

func (c *Client) once(ctx context.Context, method, url, contentType string, body []byte, out any) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("client: %s %s: %w", method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes+1))
	if err != nil {
		return fmt.Errorf("client: reading the answer to %s %s: %w", method, req.URL.Path, err)
	}
	if len(b) > MaxResponseBytes {
		return fmt.Errorf("client: answer to %s %s is over %d bytes", method, req.URL.Path, MaxResponseBytes)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		e := &Error{StatusCode: resp.StatusCode, RequestID: resp.Header.Get("X-Request-Id")}
		var eb struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(b, &eb) == nil && eb.Error != "" {
			e.Message = eb.Error
		} else {
			e.Message = strings.TrimSpace(string(b[:min(len(b), 200)]))
		}
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s >= 0 {
			e.RetryAfter = time.Duration(s) * time.Second
		}
		return e
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("client: decoding the answer to %s %s: %w", method, req.URL.Path, err)
	}
	return nil
}
