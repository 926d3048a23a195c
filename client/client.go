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

	"github.com/bitrun/bitrun/api"
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

// The wire types are those of package api, shared with the server.
type (
	// Prediction is one class of a top-k answer.
	Prediction = api.Prediction
	// Result is the answer for one image.
	Result = api.PredictResult
	// PredictResponse is the answer of a predict call; Predictions are
	// those of the first image, Results one per image in order.
	PredictResponse = api.PredictResponse
	// Tensor is a KServe v2 tensor (see api.FP32, api.BinaryFP32, api.Uint8).
	Tensor = api.Tensor
	// InferRequest is a KServe v2 infer request; Outputs empty means all.
	InferRequest = api.InferRequest
	// InferResponse is a KServe v2 infer answer.
	InferResponse = api.InferResponse
	// RequestedOutput names an output and its parameters.
	RequestedOutput = api.RequestedOutput
	// TensorMetadata describes a model input or output.
	TensorMetadata = api.TensorMetadata
	// Preprocessing is how the server turns an image into the model input.
	Preprocessing = api.Preprocessing
	// ModelMetadata is GET /v2/models/{model}[/versions/{v}].
	ModelMetadata = api.ModelMetadata
	// Model is one entry of Models.
	Model = api.ModelEntry
	// ServerMetadata is GET /v2.
	ServerMetadata = api.ServerMetadata
	// Statistics is GET .../stats.
	Statistics = api.Statistics
	// RepositoryModel is one entry of the repository index.
	RepositoryModel = api.RepositoryModel
	// RepositoryLoad is the answer of a load or unload.
	RepositoryLoad = api.RepositoryLoad
)

// File is one image for PredictFiles.
type File struct {
	Name string
	Data []byte
}

// Predict sends one encoded image (JPEG, PNG, GIF, BMP, WebP) as the raw
// body and returns the top k classes (k <= 0: the server's default).
func (c *Client) Predict(ctx context.Context, model string, image []byte, k int) (*PredictResponse, error) {
	return c.PredictVersion(ctx, model, "", image, k)
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
	if err := c.do(ctx, http.MethodPost, predictPath(model, "", k), mw.FormDataContentType(), b.Bytes(), &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// predictPath is the predict route of a model (version "": the latest)
// asking for k classes (k <= 0: the server's default).
func predictPath(model, version string, k int) string {
	p := modelPath("/v1/models/", model, version) + "/predict"
	if k > 0 {
		p += "?top_k=" + strconv.Itoa(k)
	}
	return p
}

// modelPath is prefix + the escaped model name, then /versions/{version}
// when version is not empty.
func modelPath(prefix, model, version string) string {
	p := prefix + url.PathEscape(model)
	if version != "" {
		p += "/versions/" + url.PathEscape(version)
	}
	return p
}

// PredictVersion is Predict for one version of a model ("" for the
// latest).
func (c *Client) PredictVersion(ctx context.Context, model, version string, image []byte, k int) (*PredictResponse, error) {
	ct := http.DetectContentType(image)
	if !strings.HasPrefix(ct, "image/") {
		ct = "application/octet-stream"
	}
	var out PredictResponse
	if err := c.do(ctx, http.MethodPost, predictPath(model, version, k), ct, image, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Infer sends tensors to POST /v2/models/{model}/infer. Tensors built with
// api.BinaryFP32 (or api.Uint8 with bin) travel with the binary tensor data
// extension; outputs asked for with the parameter "binary_data" come back
// in Tensor.Raw, and Tensor.Float32s or Tensor.Strings read either form.
func (c *Client) Infer(ctx context.Context, model string, req *InferRequest) (*InferResponse, error) {
	return c.InferVersion(ctx, model, "", req)
}

// InferVersion is Infer for one version of a model ("" for the latest).
func (c *Client) InferVersion(ctx context.Context, model, version string, req *InferRequest) (*InferResponse, error) {
	body, headerLen, err := api.EncodeBody(req, req.Inputs)
	if err != nil {
		return nil, fmt.Errorf("client: encoding infer request: %w", err)
	}
	ct, hdr := "application/json", map[string]string(nil)
	if headerLen >= 0 {
		ct, hdr = "application/octet-stream", map[string]string{api.HeaderInferenceContentLength: strconv.Itoa(headerLen)}
	}
	var out *InferResponse
	err = c.doRaw(ctx, http.MethodPost, modelPath("/v2/models/", model, version)+"/infer", ct, hdr, body, func(h http.Header, b []byte) error {
		r, err := api.DecodeResponse(b, h.Get(api.HeaderInferenceContentLength))
		out = r
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Metadata returns a model's metadata (its latest version).
func (c *Client) Metadata(ctx context.Context, model string) (*ModelMetadata, error) {
	return c.MetadataVersion(ctx, model, "")
}

// MetadataVersion returns the metadata of one version of a model.
func (c *Client) MetadataVersion(ctx context.Context, model, version string) (*ModelMetadata, error) {
	var out ModelMetadata
	if err := c.do(ctx, http.MethodGet, modelPath("/v2/models/", model, version), "", nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ServerMetadata returns GET /v2: name, version and protocol extensions.
func (c *Client) ServerMetadata(ctx context.Context) (*ServerMetadata, error) {
	var out ServerMetadata
	if err := c.do(ctx, http.MethodGet, "/v2", "", nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Models lists the served models.
func (c *Client) Models(ctx context.Context) ([]Model, error) {
	var out api.ModelList
	if err := c.do(ctx, http.MethodGet, "/v1/models", "", nil, &out); err != nil {
		return nil, err
	}
	return out.Models, nil
}

// Stats returns the statistics of every model version (model ""), of a
// model's versions (version ""), or of one version.
func (c *Client) Stats(ctx context.Context, model, version string) (*Statistics, error) {
	p := "/v2/models/stats"
	if model != "" {
		p = modelPath("/v2/models/", model, version) + "/stats"
	}
	var out Statistics
	if err := c.do(ctx, http.MethodGet, p, "", nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// RepositoryIndex lists the model repository (only the ready versions with
// readyOnly).
func (c *Client) RepositoryIndex(ctx context.Context, readyOnly bool) ([]RepositoryModel, error) {
	b, err := json.Marshal(api.RepositoryIndexRequest{Ready: readyOnly})
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	var out []RepositoryModel
	if err := c.do(ctx, http.MethodPost, "/v2/repository/index", "application/json", b, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// LoadModel (re)loads a model from the server's repository; the versions
// served before stay when it fails.
func (c *Client) LoadModel(ctx context.Context, model string) (*RepositoryLoad, error) {
	var out RepositoryLoad
	if err := c.do(ctx, http.MethodPost, "/v2/repository/models/"+url.PathEscape(model)+"/load", "", nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// UnloadModel stops serving a model of the repository.
func (c *Client) UnloadModel(ctx context.Context, model string) (*RepositoryLoad, error) {
	var out RepositoryLoad
	if err := c.do(ctx, http.MethodPost, "/v2/repository/models/"+url.PathEscape(model)+"/unload", "", nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
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
	return c.ModelVersionReady(ctx, model, "")
}

// ModelVersionReady is Ready for one version of a model.
func (c *Client) ModelVersionReady(ctx context.Context, model, version string) error {
	return c.do(ctx, http.MethodGet, modelPath("/v2/models/", model, version)+"/ready", "", nil, nil)
}

// do sends a request (retrying 503s as configured) and decodes a 2xx JSON
// answer into out (when not nil).
func (c *Client) do(ctx context.Context, method, path, contentType string, body []byte, out any) error {
	return c.doRaw(ctx, method, path, contentType, nil, body, func(_ http.Header, b []byte) error {
		if out == nil {
			return nil
		}
		return json.Unmarshal(b, out)
	})
}

// doRaw sends a request (retrying 503s as configured) and hands a 2xx
// answer's headers and body to decode.
func (c *Client) doRaw(ctx context.Context, method, path, contentType string, header map[string]string, body []byte, decode func(http.Header, []byte) error) error {
	full := c.base.String() + path // path segments are already escaped
	for attempt := 0; ; attempt++ {
		err := c.once(ctx, method, full, contentType, header, body, decode)
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

func (c *Client) once(ctx context.Context, method, url, contentType string, header map[string]string, body []byte, decode func(http.Header, []byte) error) error {
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
	for k, v := range header {
		req.Header.Set(k, v)
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
		var eb api.Error
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
	if err := decode(resp.Header, b); err != nil {
		return fmt.Errorf("client: decoding the answer to %s %s: %w", method, req.URL.Path, err)
	}
	return nil
}
