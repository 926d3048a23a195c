package serve

import (
	"context"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"time"

	"github.com/bitrun/bitrun/api"
	"github.com/bitrun/bitrun/data"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

func (s *Server) healthz(_ *reqCtx, w http.ResponseWriter, r *http.Request) error {
	if !s.Ready() {
		return s.notReady()
	}
	// Model names only for callers that could list them anyway
	// (/v1/models needs the token when one is set).
	if s.cfg.AuthToken != "" && s.authorized(r) != nil {
		writeJSON(w, http.StatusOK, api.Healthz{Status: "ok"})
		return nil
	}
	writeJSON(w, http.StatusOK, api.Healthz{Status: "ok", Models: s.table.Load().names})
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
	writeJSON(w, http.StatusOK, api.Live{Live: true})
	return nil
}

func (s *Server) ready(_ *reqCtx, w http.ResponseWriter, _ *http.Request) error {
	if !s.Ready() {
		return s.notReady()
	}
	writeJSON(w, http.StatusOK, api.Ready{Ready: true})
	return nil
}

// Extensions are the v2 protocol extensions the server implements, as GET
// /v2 lists them.
var Extensions = []string{api.ExtensionBinaryData, api.ExtensionClassification, api.ExtensionStatistics, api.ExtensionRepository}

func (s *Server) serverMetadata(_ *reqCtx, w http.ResponseWriter, _ *http.Request) error {
	writeJSON(w, http.StatusOK, api.ServerMetadata{Name: "bitrun", Version: s.cfg.Version, Extensions: Extensions})
	return nil
}

func (s *Server) listModels(_ *reqCtx, w http.ResponseWriter, _ *http.Request) error {
	list := api.ModelList{Models: []api.ModelEntry{}}
	if t := s.table.Load(); t != nil {
		for _, name := range t.names {
			vs := t.models[name]
			ready := !s.draining.Load()
			for _, c := range vs {
				ready = ready && c.Ready()
			}
			list.Models = append(list.Models, api.ModelEntry{Name: name, Ready: ready, Versions: versions(vs)})
		}
	}
	writeJSON(w, http.StatusOK, list)
	return nil
}

func (s *Server) modelReady(rc *reqCtx, w http.ResponseWriter, r *http.Request) error {
	c, err := s.lookupReady(rc, r.PathValue("name"), r.PathValue("version"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, api.ModelReady{Name: c.name, Version: c.version, Ready: true})
	return nil
}

// TensorMetadata describes one model input or output (KServe v2).
type TensorMetadata = api.TensorMetadata

// ModelMetadata is the body of GET /v2/models/{name}: the KServe v2 fields
// plus labels, preprocessing, the model file's SHA-256 and batching limits.
type ModelMetadata = api.ModelMetadata

// Metadata describes the classifier as GET /v2/models/{name} shows it.
// Versions lists its own version only; the server fills in every served one.
func (c *Classifier) Metadata() ModelMetadata {
	m := ModelMetadata{
		Name: c.name, Version: c.version, Versions: []string{c.version}, Platform: "onnxruntime_onnx",
		Inputs: []TensorMetadata{{Name: c.info.Input, Datatype: "FP32",
			Shape: []int64{int64(c.batchDim()), int64(c.pre.Channels), int64(c.pre.Resolution), int64(c.pre.Resolution)}}},
		Classes: c.classes, Labels: c.Labels(), Preprocessing: c.pre.Preprocessing, SHA256: c.sha256,
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
	c, err := s.lookup(rc, r.PathValue("name"), r.PathValue("version"))
	if err != nil {
		return err
	}
	m := c.Metadata()
	m.Ready = m.Ready && !s.draining.Load()
	if t := s.table.Load(); t != nil {
		m.Versions = versions(t.models[c.name])
	}
	writeJSON(w, http.StatusOK, m)
	return nil
}

// statistics answers GET /v2/models/stats (every model version),
// /v2/models/{name}/stats (its versions) and .../versions/{v}/stats.
func (s *Server) statistics(rc *reqCtx, w http.ResponseWriter, r *http.Request) error {
	t := s.table.Load()
	if t == nil {
		return s.notReady()
	}
	out := api.Statistics{ModelStats: []api.ModelStatistics{}}
	name, version := r.PathValue("name"), r.PathValue("version")
	var cs []*Classifier
	switch {
	case name == "":
		cs = t.list()
	case version == "":
		if _, err := s.lookup(rc, name, ""); err != nil {
			return err
		}
		cs = t.models[name]
	default:
		c, err := s.lookup(rc, name, version)
		if err != nil {
			return err
		}
		cs = []*Classifier{c}
	}
	for _, c := range cs {
		out.ModelStats = append(out.ModelStats, c.Statistics())
	}
	writeJSON(w, http.StatusOK, out)
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
type PredictResult = api.PredictResult

// PredictResponse is the body of POST /v1/models/{name}/predict.
// Predictions are those of the first (usually only) image; Results has one
// entry per image, in request order.
type PredictResponse = api.PredictResponse

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

// take admits a request (an in-flight slot) and takes the model version it
// names (looked up now: it may have been reloaded while the body came in),
// both held until release.
func (s *Server) take(rc *reqCtx, name, version string) (*Classifier, func(), error) {
	free, err := s.admit()
	if err != nil {
		return nil, nil, err
	}
	c, done, err := s.use(rc, name, version)
	if err != nil {
		free()
		return nil, nil, err
	}
	return c, func() { done(); free() }, nil
}

// start takes the model of one inference request (take) and returns it,
// ctx bounded by Config.RequestTimeout, and end, which records the request's
// duration and error in the model's statistics and gives back what start
// took. HTTP routes use startBody; gRPC's ModelInfer calls start directly.
func (s *Server) start(ctx context.Context, rc *reqCtx, name, version string) (*Classifier, context.Context, func(err error), error) {
	c, release, err := s.take(rc, name, version)
	if err != nil {
		return nil, nil, nil, err
	}
	begun := time.Now()
	ctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
	return c, ctx, func(err error) {
		cancel()
		c.request(time.Since(begun), err)
		release()
	}, nil
}

// startBody reads the request body in full, then starts the request: slow
// clients hold only the bytes they sent (charged to the body budget), never
// an in-flight slot, and the model is held until the answer is written. end
// also gives the body's budget back.
func (s *Server) startBody(rc *reqCtx, w http.ResponseWriter, r *http.Request, name, version string) (raw []byte, c *Classifier, ctx context.Context, end func(err error), err error) {
	raw, releaseBody, err := s.readBody(w, r)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	c, ctx, endRequest, err := s.start(r.Context(), rc, name, version)
	if err != nil {
		releaseBody()
		return nil, nil, nil, nil, err
	}
	return raw, c, ctx, func(err error) { endRequest(err); releaseBody() }, nil
}

func (s *Server) predict(rc *reqCtx, w http.ResponseWriter, r *http.Request) (err error) {
	name, version := r.PathValue("name"), r.PathValue("version")
	c, err := s.lookupReady(rc, name, version)
	if err != nil {
		return err
	}
	k := c.opts.TopK
	if q := r.URL.Query().Get("top_k"); q != "" {
		if k, err = strconv.Atoi(q); err != nil || k < 1 {
			return fmt.Errorf("%w: top_k=%q; want a positive integer", ErrBadRequest, q)
		}
	}
	raw, c, ctx, end, err := s.startBody(rc, w, r, name, version)
	if err != nil {
		return err
	}
	defer func() { end(err) }()
	lim := uploadLimits{maxBody: s.cfg.MaxBody, maxPixels: s.cfg.MaxPixels, maxImages: s.cfg.MaxImages, budget: s.bodies}
	// Each image becomes its model input row at once; its bytes and pixels
	// are reused for the next upload.
	ups, err := decodeUpload(r.Header.Get("Content-Type"), raw, lim, func(b []byte) (row []float32, err error) {
		err = s.decoding(ctx, data.Pixels(b), func() error {
			row, err = decodeRow(b, s.cfg.MaxPixels, c.pre)
			return err
		})
		return row, err
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
	resp := PredictResponse{Model: c.name, Version: c.version, ID: rc.id, Results: make([]PredictResult, len(ups))}
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

// decoding runs f, the decode of an image of pixels pixels, holding one of
// the Config.MaxDecodes decode slots and its share of
// Config.MaxDecodeMemory (data.DecodeBytesPerPixel per pixel, at most the
// largest allowed image's); it waits for both until ctx ends.
func (s *Server) decoding(ctx context.Context, pixels int64, f func() error) error {
	select {
	case s.decodeSem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-s.decodeSem }()
	cost := data.DecodeBytesPerPixel * min(max(pixels, 0), int64(s.cfg.MaxPixels))
	if err := s.decodeMem.take(ctx, cost); err != nil {
		return err
	}
	defer s.decodeMem.give(cost)
	return f()
}

func (s *Server) infer(rc *reqCtx, w http.ResponseWriter, r *http.Request) (err error) {
	name, version := r.PathValue("name"), r.PathValue("version")
	c, err := s.lookupReady(rc, name, version)
	if err != nil {
		return err
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" && mt != "application/octet-stream" {
			return fmt.Errorf("%w: %q; the infer endpoint takes application/json, or application/octet-stream with the %s header (KServe v2 binary tensors)", ErrUnsupportedMedia, ct, api.HeaderInferenceContentLength)
		}
	}
	raw, c, ctx, end, err := s.startBody(rc, w, r, name, version)
	if err != nil {
		return err
	}
	defer func() { end(err) }()
	// Parsing copies the tensor data once more: charge it too.
	if err := s.bodies.take(int64(len(raw))); err != nil {
		return err
	}
	req, err := s.parseInfer(ctx, raw, r.Header.Get(api.HeaderInferenceContentLength), c)
	s.bodies.give(int64(len(raw)))
	if err != nil {
		return err
	}
	outs, err := c.inferRows(ctx, req.input, req.rows)
	if err != nil {
		return err
	}
	b, headerLen, err := c.inferAnswer(req, outs)
	if err != nil {
		return err
	}
	if headerLen >= 0 {
		w.Header().Set(api.HeaderInferenceContentLength, strconv.Itoa(headerLen))
		writeTyped(w, http.StatusOK, "application/octet-stream", b)
		return nil
	}
	writeBody(w, http.StatusOK, b)
	return nil
}
