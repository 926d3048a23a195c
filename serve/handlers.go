package serve

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

func (s *Server) healthz(_ *reqCtx, w http.ResponseWriter, r *http.Request) error {
	if !s.Ready() {
		return s.notReady()
	}
	// Model names only for callers that could list them anyway
	// (/v1/models needs the token when one is set).
	if s.cfg.AuthToken != "" && s.authorized(r) != nil {
		writeJSON(w, http.StatusOK, map[string]any{"status": "ok"})
		return nil
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "models": s.table.Load().names})
	return nil
}

func (s *Server) notReady() error {
	if s.draining.Load() {
		return fmt.Errorf("%w: shutting down", ErrNotReady)
	}
	if s.table.Load() == nil {
		return fmt.Errorf("%w: models loading", ErrNotReady)
	}
	return fmt.Errorf("%w: a model is not ready", ErrNotReady)
}

func (s *Server) live(_ *reqCtx, w http.ResponseWriter, _ *http.Request) error {
	writeJSON(w, http.StatusOK, map[string]bool{"live": true})
	return nil
}

func (s *Server) ready(_ *reqCtx, w http.ResponseWriter, _ *http.Request) error {
	if !s.Ready() {
		return s.notReady()
	}
	writeJSON(w, http.StatusOK, map[string]bool{"ready": true})
	return nil
}

func (s *Server) serverMetadata(_ *reqCtx, w http.ResponseWriter, _ *http.Request) error {
	writeJSON(w, http.StatusOK, map[string]any{"name": "bitrun", "version": s.cfg.Version, "extensions": []string{}})
	return nil
}

type modelEntry struct {
	Name  string `json:"name"`
	Ready bool   `json:"ready"`
}

func (s *Server) listModels(_ *reqCtx, w http.ResponseWriter, _ *http.Request) error {
	list := []modelEntry{}
	for _, c := range s.Models() {
		list = append(list, modelEntry{Name: c.name, Ready: !s.draining.Load() && c.Ready()})
	}
	writeJSON(w, http.StatusOK, map[string]any{"models": list})
	return nil
}

// model looks up the {name} of the request and records it for the log line.
func (s *Server) model(rc *reqCtx, r *http.Request) (*Classifier, error) {
	name := r.PathValue("name")
	t := s.table.Load()
	if t == nil {
		return nil, s.notReady()
	}
	c, ok := t.models[name]
	if !ok {
		if ValidName(name) {
			rc.model = name
		}
		return nil, fmt.Errorf("%w: %q (serving: %s)", ErrModelNotFound, name, strings.Join(t.names, ", "))
	}
	rc.model = name
	return c, nil
}

func (s *Server) modelReady(rc *reqCtx, w http.ResponseWriter, r *http.Request) error {
	c, err := s.model(rc, r)
	if err != nil {
		return err
	}
	if s.draining.Load() || !c.Ready() {
		return s.notReady()
	}
	writeJSON(w, http.StatusOK, map[string]any{"name": c.name, "ready": true})
	return nil
}

// TensorMetadata describes one model input or output (KServe v2).
type TensorMetadata struct {
	Name     string  `json:"name"`
	Datatype string  `json:"datatype"`
	Shape    []int64 `json:"shape"`
}

// ModelMetadata is the body of GET /v2/models/{name}: the KServe v2 fields
// plus labels, preprocessing, the model file's SHA-256 and batching limits.
type ModelMetadata struct {
	Name          string           `json:"name"`
	Versions      []string         `json:"versions"`
	Platform      string           `json:"platform"`
	Inputs        []TensorMetadata `json:"inputs"`
	Outputs       []TensorMetadata `json:"outputs"`
	Classes       int              `json:"classes"`
	Labels        []string         `json:"labels"`
	Preprocessing Preprocessing    `json:"preprocessing"`
	File          string           `json:"file,omitempty"`
	SHA256        string           `json:"sha256,omitempty"`
	MaxBatch      int              `json:"max_batch"`
	Ready         bool             `json:"ready"`
}

// Metadata describes the classifier as GET /v2/models/{name} shows it.
func (c *Classifier) Metadata() ModelMetadata {
	m := ModelMetadata{
		Name: c.name, Versions: []string{"1"}, Platform: "onnxruntime_onnx",
		Inputs: []TensorMetadata{{Name: c.info.Input, Datatype: "FP32",
			Shape: []int64{int64(c.batchDim()), int64(c.pre.Channels), int64(c.pre.Resolution), int64(c.pre.Resolution)}}},
		Classes: c.classes, Labels: c.Labels(), Preprocessing: c.pre, SHA256: c.sha256,
		MaxBatch: c.opts.MaxBatch, Ready: c.Ready(),
	}
	if m.Labels == nil {
		m.Labels = make([]string, c.classes)
		for i := range m.Labels {
			m.Labels[i] = c.label(i)
		}
	}
	if c.path != "" {
		m.File = filepath.Base(c.path)
	}
	for _, name := range c.info.Outputs {
		m.Outputs = append(m.Outputs, TensorMetadata{Name: name, Datatype: "FP32", Shape: c.outShape[name]})
	}
	return m
}

// batchDim is the batch dimension as KServe shows it: -1 when dynamic.
func (c *Classifier) batchDim() int {
	if c.fixedN > 0 {
		return c.fixedN
	}
	return -1
}

func (s *Server) modelMetadata(rc *reqCtx, w http.ResponseWriter, r *http.Request) error {
	c, err := s.model(rc, r)
	if err != nil {
		return err
	}
	m := c.Metadata()
	m.Ready = m.Ready && !s.draining.Load()
	writeJSON(w, http.StatusOK, m)
	return nil
}

func (s *Server) metricsHandler() func(*reqCtx, http.ResponseWriter, *http.Request) error {
	h := promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{})
	return func(_ *reqCtx, w http.ResponseWriter, r *http.Request) error {
		h.ServeHTTP(w, r)
		return nil
	}
}

// PredictResult is the answer for one image of a predict request.
type PredictResult struct {
	File        string       `json:"file,omitempty"`
	Predictions []Prediction `json:"predictions"`
}

// PredictResponse is the body of POST /v1/models/{name}/predict.
// Predictions are those of the first (usually only) image; Results has one
// entry per image, in request order.
type PredictResponse struct {
	Model       string          `json:"model"`
	ID          string          `json:"id"`
	Predictions []Prediction    `json:"predictions"`
	Results     []PredictResult `json:"results"`
}

// readBody reads the request body (capped at Config.MaxBody, charged to the
// body budget) within Config.BodyTimeout; release returns its buffer.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) (b []byte, release func(), err error) {
	if r.ContentLength > s.cfg.MaxBody {
		return nil, nil, tooLarge(s.cfg.MaxBody)
	}
	if s.cfg.BodyTimeout > 0 {
		// Best effort: a ResponseWriter that cannot set deadlines (a
		// test recorder, a wrapping mux) keeps the server's ReadTimeout.
		// The deadline is not lifted afterwards: the server reads the
		// next request under deadlines of its own, and an unread rest of
		// this body must not be waited for without one.
		_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(s.cfg.BodyTimeout))
	}
	b, release, err = readCapped(http.MaxBytesReader(w, r.Body, s.cfg.MaxBody), s.cfg.MaxBody, r.ContentLength, s.bodies)
	if ne := net.Error(nil); err != nil && errors.As(err, &ne) && ne.Timeout() {
		err = fmt.Errorf("%w: request body not received within %v (the body timeout)", ErrBodyTimeout, s.cfg.BodyTimeout)
	}
	return b, release, err
}

// admit takes one of the Config.MaxInFlight request slots; release it
// when done.
func (s *Server) admit() (release func(), err error) {
	select {
	case s.inFlight <- struct{}{}:
		return func() { <-s.inFlight }, nil
	default:
		return nil, fmt.Errorf("%w: %d requests in flight (the max-in-flight limit)", ErrQueueFull, cap(s.inFlight))
	}
}

func (s *Server) predict(rc *reqCtx, w http.ResponseWriter, r *http.Request) error {
	c, err := s.model(rc, r)
	if err != nil {
		return err
	}
	if s.draining.Load() || !c.Ready() {
		return s.notReady()
	}
	k := c.opts.TopK
	if q := r.URL.Query().Get("top_k"); q != "" {
		if k, err = strconv.Atoi(q); err != nil || k < 1 {
			return fmt.Errorf("%w: top_k=%q; want a positive integer", ErrBadRequest, q)
		}
	}
	// The body is read in full before an in-flight slot is taken, so slow
	// clients hold only the bytes they sent (charged to the body budget),
	// never a slot.
	raw, releaseBody, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	defer releaseBody()
	release, err := s.admit()
	if err != nil {
		return err
	}
	defer release()
	lim := uploadLimits{maxBody: s.cfg.MaxBody, maxPixels: s.cfg.MaxPixels, maxImages: s.cfg.MaxImages, budget: s.bodies}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
	defer cancel()
	// Each image becomes its model input row at once; its bytes and pixels
	// are reused for the next upload.
	ups, err := decodeUpload(r.Header.Get("Content-Type"), bytes.NewReader(raw), int64(len(raw)), lim, func(b []byte) ([]float32, error) {
		select {
		case s.decodeSem <- struct{}{}:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		defer func() { <-s.decodeSem }()
		return decodeRow(b, s.cfg.MaxPixels, c.pre)
	})
	if err != nil {
		return err
	}
	x := ups[0].val
	if len(ups) > 1 {
		x = make([]float32, 0, len(ups)*c.pre.Size())
		for _, u := range ups {
			x = append(x, u.val...)
		}
	}
	outs, err := c.inferRows(ctx, x, len(ups))
	if err != nil {
		return err
	}
	resp := PredictResponse{Model: c.name, ID: rc.id, Results: make([]PredictResult, len(ups))}
	for i, u := range ups {
		preds, err := c.topK(outs[i][c.output], k)
		if err != nil {
			return err
		}
		resp.Results[i] = PredictResult{File: u.name, Predictions: preds}
	}
	resp.Predictions = resp.Results[0].Predictions
	writeJSON(w, http.StatusOK, resp)
	return nil
}

func (s *Server) infer(rc *reqCtx, w http.ResponseWriter, r *http.Request) error {
	c, err := s.model(rc, r)
	if err != nil {
		return err
	}
	if s.draining.Load() || !c.Ready() {
		return s.notReady()
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			return fmt.Errorf("%w: %q; the infer endpoint takes application/json (KServe v2)", ErrUnsupportedMedia, ct)
		}
	}
	raw, releaseBody, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	defer releaseBody()
	release, err := s.admit()
	if err != nil {
		return err
	}
	defer release()
	// Parsing copies the tensor data once more: charge it too.
	if err := s.bodies.take(int64(len(raw))); err != nil {
		return err
	}
	req, err := parseInfer(raw, c, s.cfg.MaxImages)
	s.bodies.give(int64(len(raw)))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
	defer cancel()
	outs, err := c.inferRows(ctx, req.input, req.rows)
	if err != nil {
		return err
	}
	resp := inferResponse{ModelName: c.name, ModelVersion: "1", ID: req.id}
	for _, name := range req.outputs {
		o := inferOutput{Name: name, Datatype: "FP32"}
		for _, row := range outs {
			o.Data = append(o.Data, row[name]...)
		}
		rowShape := c.outShape[name][1:]
		o.Shape = append([]int64{int64(req.rows)}, rowShape...)
		resp.Outputs = append(resp.Outputs, o)
	}
	// Encoded before the status is written: an output that cannot be
	// encoded (NaN or Inf from the model) is a 500 with a JSON error, not
	// a 200 with an empty body.
	b, err := encodeInferResponse(resp)
	if err != nil {
		return err
	}
	writeBody(w, http.StatusOK, b)
	return nil
}
