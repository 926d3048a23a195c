package serve

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	"github.com/bitrun/bitrun/api"
	"github.com/bitrun/bitrun/data"
	"github.com/bitrun/bitrun/internal/setting"
)

// Config configures a Server. The zero value is usable (DefaultConfig
// returns it filled in). As in every bitrun settings struct, a zero field
// takes the default documented beside it and, where a setting can be
// switched off, a negative value switches it off; the caps and timeouts
// that keep the server safe for untrusted clients cannot be switched off
// and take their default for a negative value too.
type Config struct {
	Addr              string        // listen address; "": "127.0.0.1:8080" (loopback only)
	MaxBody           int64         // request body cap in bytes (413 beyond); 0 or negative: 16 MiB
	MaxPixels         int           // per-image pixel cap, checked before decoding; 0 or negative: data.DefaultMaxPixels
	MaxImages         int           // images per request (multipart parts or infer batch); 0 or negative: 16
	AuthToken         string        // when set, every route but the health probes needs "Authorization: Bearer <token>"; "": no token
	RequestTimeout    time.Duration // inference deadline per request (504 beyond); 0 or negative: 30s
	ReadHeaderTimeout time.Duration // 0 or negative: 5s
	ReadTimeout       time.Duration // whole request read; 0 or negative: 60s
	WriteTimeout      time.Duration // 0 or negative: RequestTimeout + 30s
	IdleTimeout       time.Duration // keep-alive idle; 0 or negative: 120s
	DrainDelay        time.Duration // Shutdown: time readiness reports 503 before the listener closes; 0 (the default) or negative: none
	MaxDecodes        int           // images decoded at once (bounds decode memory); 0 or negative: 2*GOMAXPROCS
	MaxInFlight       int           // predict/infer requests decoded and run at once, slots taken once the body is in (503 beyond); 0 or negative: 256
	BodyTimeout       time.Duration // time to receive a predict/infer body once its headers are in (408 beyond); 0: 10s; negative: ReadTimeout only
	// MaxDecodeMemory bounds the memory of the image decodes in progress
	// together: each decode is charged data.DecodeBytesPerPixel (12) bytes
	// per pixel its header declares before any pixel is decoded, and waits
	// for room until its request's deadline; 0: 512 MiB, or MaxDecodes × 12
	// × MaxPixels when that is less; negative: MaxDecodes × 12 × MaxPixels
	// (the count bound alone). It is never below 12 × MaxPixels, so that
	// the largest allowed image can be decoded.
	MaxDecodeMemory int64
	// MaxBodyMemory bounds the request body bytes (with their parsing
	// copies) that all requests together hold in memory (503 beyond); 0:
	// 1 GiB, or 2 × MaxInFlight × MaxBody when that is less; negative: 2 ×
	// MaxInFlight × MaxBody. It is never below 2 × MaxBody, so that one
	// request of the largest size can always be parsed.
	MaxBodyMemory   int64
	Logger          *slog.Logger         // one line per request; nil: discard
	Registry        *prometheus.Registry // metrics registry; nil: a new one (served at /metrics)
	CORSOrigins     []string             // origins allowed to call the API from a browser ("*": any); nil: none (no CORS headers)
	Version, Commit string               // reported by /v2 and bitrun_build_info; "": "(devel)", "unknown"
}

// Default caps of Config.MaxBodyMemory and Config.MaxDecodeMemory.
const (
	defaultBodyMemory   = 1 << 30
	defaultDecodeMemory = 512 << 20
)

// memoryBound resolves a memory bound setting v: 0 is def, or the count
// bound all when that is less; negative is all; never below one request's
// need, least.
func memoryBound(v, def, all, least int64) int64 {
	return max(setting.Resolve(v, min(def, all), all), least)
}

// DefaultConfig returns Config with every default filled in.
func DefaultConfig() Config {
	return Config{}.withDefaults()
}

func (c Config) withDefaults() Config {
	if c.Addr == "" {
		c.Addr = "127.0.0.1:8080"
	}
	if c.MaxBody <= 0 {
		c.MaxBody = 16 << 20
	}
	if c.MaxPixels <= 0 {
		c.MaxPixels = data.DefaultMaxPixels
	}
	if c.MaxImages <= 0 {
		c.MaxImages = 16
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = 30 * time.Second
	}
	if c.ReadHeaderTimeout <= 0 {
		c.ReadHeaderTimeout = 5 * time.Second
	}
	if c.ReadTimeout <= 0 {
		c.ReadTimeout = 60 * time.Second
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = c.RequestTimeout + 30*time.Second
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 120 * time.Second
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = 256
	}
	if c.BodyTimeout == 0 {
		c.BodyTimeout = 10 * time.Second
	}
	if c.MaxDecodes <= 0 {
		c.MaxDecodes = 2 * runtime.GOMAXPROCS(0)
	}
	perImage := data.DecodeBytesPerPixel * int64(c.MaxPixels)
	c.MaxDecodeMemory = memoryBound(c.MaxDecodeMemory, defaultDecodeMemory, int64(c.MaxDecodes)*perImage, perImage)
	c.MaxBodyMemory = memoryBound(c.MaxBodyMemory, defaultBodyMemory, 2*int64(c.MaxInFlight)*c.MaxBody, 2*c.MaxBody)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Version == "" {
		c.Version = "(devel)"
	}
	if c.Commit == "" {
		c.Commit = "unknown"
	}
	return c
}

// Server serves classifiers over HTTP: raw-image predict, KServe v2,
// health, Prometheus metrics. Handler gives the http.Handler to mount in
// another mux; Serve/ListenAndServe run a hardened http.Server.
//
// The Server owns its classifiers: Shutdown and Close close them.
type Server struct {
	cfg       Config
	table     atomic.Pointer[modelTable] // nil while the models load
	repo      atomic.Pointer[Repository] // the model repository, when one is attached
	addMu     sync.Mutex                 // serialises Add and Close
	closed    bool                       // guarded by addMu
	reg       *prometheus.Registry
	metrics   *metrics
	mux       *http.ServeMux
	decodeSem chan struct{}
	decodeMem *waitBudget   // bytes of decodes in progress: Config.MaxDecodeMemory
	inFlight  chan struct{} // slots of predict/infer requests
	bodies    *bodyBudget   // request body bytes held: Config.MaxBodyMemory
	probes    chan struct{} // gRPC health calls admitted past a full body budget (grpcProbeSlots)
	draining  atomic.Bool

	mu   sync.Mutex
	http *http.Server
	grpc *grpc.Server // set by ServeGRPC

	closeOnce sync.Once
	closeErr  error
}

// NewServer builds a server over classifiers with distinct names. With no
// classifiers the server starts "loading": live, but not ready (every model
// route answers 503) until Add publishes the models. That lets a process
// listen, and pass liveness probes, while big models load and warm up.
func NewServer(cfg Config, models ...*Classifier) (*Server, error) {
	cfg = cfg.withDefaults()
	s := &Server{cfg: cfg, mux: http.NewServeMux(), decodeSem: make(chan struct{}, cfg.MaxDecodes), decodeMem: newWaitBudget(cfg.MaxDecodeMemory),
		inFlight: make(chan struct{}, cfg.MaxInFlight), bodies: &bodyBudget{limit: cfg.MaxBodyMemory}, probes: make(chan struct{}, grpcProbeSlots)}
	s.reg = cfg.Registry
	if s.reg == nil {
		s.reg = prometheus.NewRegistry()
	}
	s.metrics = newMetrics(s.reg, cfg.Version, cfg.Commit, s.Models, s.bodies)
	s.routes()
	if len(models) > 0 {
		if err := s.Add(models...); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Add publishes classifiers (names distinct from each other and from those
// already served); the server takes ownership of them. The server is ready
// once Add has been called and every model is ready. Add after Close closes
// the classifiers and fails.
func (s *Server) Add(models ...*Classifier) error {
	s.addMu.Lock()
	defer s.addMu.Unlock()
	if s.closed {
		var errs []error
		for _, c := range models {
			if c != nil {
				errs = append(errs, c.Close())
			}
		}
		return errors.Join(append(errs, fmt.Errorf("%w: server closed", ErrNotReady))...)
	}
	t := s.table.Load().clone()
	for _, c := range models {
		if c == nil {
			return errors.New("serve: nil classifier")
		}
		for _, o := range t.models[c.name] {
			if o.version == c.version {
				return fmt.Errorf("serve: two models named %q with version %s; give them distinct names or versions", c.name, c.version)
			}
		}
		t.models[c.name] = append(t.models[c.name], c)
	}
	for _, c := range models {
		slices.SortFunc(t.models[c.name], func(a, b *Classifier) int { return compareVersions(a.version, b.version) })
		s.publish(c)
	}
	t.sortNames()
	s.table.Store(t)
	return nil
}

// Models returns the served classifiers, sorted by name, then version.
func (s *Server) Models() []*Classifier { return s.table.Load().list() }

// Handler is the server's http.Handler, for mounting under another mux
// (use http.StripPrefix for a sub-path).
func (s *Server) Handler() http.Handler { return s }

// Ready reports whether every model is loaded and warmed and the server is
// not shutting down.
func (s *Server) Ready() bool {
	t := s.table.Load()
	if s.draining.Load() || t == nil {
		return false
	}
	for _, c := range t.list() {
		if !c.Ready() {
			return false
		}
	}
	return true
}

// ListenAndServe listens on Config.Addr and serves until Shutdown or Close
// (then it returns http.ErrServerClosed).
func (s *Server) ListenAndServe() error {
	l, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	return s.Serve(l)
}

// Serve serves on l with every http.Server timeout set; it returns
// http.ErrServerClosed after Shutdown or Close.
func (s *Server) Serve(l net.Listener) error {
	hs := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		ReadTimeout:       s.cfg.ReadTimeout,
		WriteTimeout:      s.cfg.WriteTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.cfg.Logger.Handler(), slog.LevelWarn),
	}
	if ok, err := install(s, &s.http, hs, "Serve", l); !ok {
		return cmp.Or(err, http.ErrServerClosed)
	}
	return hs.Serve(l)
}

// install records srv, the server Serve or ServeGRPC (method) runs, in *slot
// for Shutdown and Close to find. It refuses a second call, and closes l and
// reports false when the server is already draining: then the method
// returns at once.
func install[T comparable](s *Server, slot *T, srv T, method string, l net.Listener) (ok bool, err error) {
	var none T
	s.mu.Lock()
	if *slot != none {
		s.mu.Unlock()
		return false, fmt.Errorf("serve: %s called twice", method)
	}
	*slot = srv
	s.mu.Unlock()
	if s.draining.Load() {
		_ = l.Close()
		return false, nil
	}
	return true, nil
}

// Shutdown drains the server: readiness turns 503 at once, after
// Config.DrainDelay the listeners close (HTTP and gRPC), requests and calls
// in flight finish (their batches run), then the models are closed. When ctx ends first, remaining
// connections are closed and ctx's error is returned.
func (s *Server) Shutdown(ctx context.Context) error {
	s.draining.Store(true)
	s.cfg.Logger.Info("shutting down: readiness now 503", "drain_delay", s.cfg.DrainDelay)
	if s.cfg.DrainDelay > 0 {
		t := time.NewTimer(s.cfg.DrainDelay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
	}
	s.mu.Lock()
	hs := s.http
	s.mu.Unlock()
	var err error
	stopped := make(chan struct{})
	go func() { s.stopGRPC(ctx); close(stopped) }()
	if hs != nil {
		if err = hs.Shutdown(ctx); err != nil {
			err = errors.Join(fmt.Errorf("serve: shutdown: %w", err), hs.Close())
		}
	}
	<-stopped
	if ctx.Err() != nil {
		// Out of time: stop the runs still going instead of waiting for them.
		for _, c := range s.Models() {
			err = errors.Join(err, c.abort())
		}
	}
	return errors.Join(err, s.Close())
}

// Close closes the listener and connections at once (if serving) and the
// models (queued images are still answered). Idempotent.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.draining.Store(true)
		s.mu.Lock()
		hs := s.http
		s.mu.Unlock()
		var errs []error
		if hs != nil {
			errs = append(errs, hs.Close())
		}
		s.stopGRPC(nil)
		s.addMu.Lock()
		s.closed = true
		s.addMu.Unlock()
		for _, c := range s.Models() {
			errs = append(errs, c.Close())
		}
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

// reqCtx is the per-request state shared by the middleware and handlers.
type reqCtx struct {
	id      string
	route   string
	model   string
	version string
	err     error // what the handler failed with, for the log line
	w       *statusWriter
}

type reqCtxKey struct{}

// statusWriter records the status code and body size written.
type statusWriter struct {
	http.ResponseWriter
	code  int
	bytes int64
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// ServeHTTP routes the request, then logs one line and records metrics.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	s.metrics.http.inFlight.Inc()
	defer s.metrics.http.inFlight.Dec()
	rc := &reqCtx{id: requestID(r), route: "unmatched", w: &statusWriter{ResponseWriter: w}}
	w.Header().Set("X-Request-Id", rc.id)
	if s.cors(w, r) {
		rc.route = "preflight"
		rc.w.WriteHeader(http.StatusNoContent)
		s.metrics.request(rc.route, http.StatusNoContent, time.Since(start))
		return
	}
	r = r.WithContext(context.WithValue(r.Context(), reqCtxKey{}, rc))
	var err error
	func() {
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				err = fmt.Errorf("serve: internal error: %v", p)
				s.cfg.Logger.Error("handler panic", "id", rc.id, "panic", p)
				if rc.w.code == 0 {
					writeError(rc.w, err)
				}
			}
		}()
		s.mux.ServeHTTP(rc.w, r)
	}()
	code := rc.w.code
	if code == 0 {
		code = http.StatusOK
	}
	if err == nil {
		err = rc.err
	}
	d := time.Since(start)
	s.metrics.request(rc.route, code, d)
	attrs := []slog.Attr{
		slog.String("id", rc.id), slog.String("method", r.Method), slog.String("path", r.URL.Path),
		slog.String("route", rc.route), slog.Int("status", code), slog.Int64("bytes", rc.w.bytes),
		slog.Float64("ms", float64(d.Microseconds())/1000), slog.String("remote", r.RemoteAddr),
	}
	s.logRequest(r.Context(), "request", rc, attrs, err, code >= 500 && code != statusClientClosed)
}

// logRequest writes the one log line (msg) of an HTTP request or a gRPC
// call: attrs, the model and version it named, and its error. A failure
// that is the server's fault (serverFault) logs at Error, others at Info.
func (s *Server) logRequest(ctx context.Context, msg string, rc *reqCtx, attrs []slog.Attr, err error, serverFault bool) {
	if rc.model != "" {
		attrs = append(attrs, slog.String("model", rc.model))
	}
	if rc.version != "" {
		attrs = append(attrs, slog.String("version", rc.version))
	}
	level := slog.LevelInfo
	if err != nil {
		attrs = append(attrs, slog.String("error", err.Error()))
		if serverFault {
			level = slog.LevelError
		}
	}
	s.cfg.Logger.LogAttrs(ctx, level, msg, attrs...)
}

// requestID is the client's X-Request-Id when it is short and plain,
// otherwise a fresh random one.
func requestID(r *http.Request) string { return requestIDFrom(r.Header.Get("X-Request-Id")) }

// requestIDFrom is id when it is short and plain, otherwise a fresh random
// one.
func requestIDFrom(id string) string {
	if id != "" && len(id) <= 64 && ValidName(id) {
		return id
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// route is one endpoint: its label in metrics and logs, its methods and
// whether it is reachable without the bearer token.
type route struct {
	pattern string
	name    string
	methods []string
	public  bool
	h       func(rc *reqCtx, w http.ResponseWriter, r *http.Request) error
}

func (s *Server) routes() {
	for _, rt := range s.routeTable() {
		s.mux.HandleFunc(rt.pattern, s.wrap(rt))
	}
}

// routeTable lists every endpoint; openapi.json describes the same set
// (TestOpenAPIMatchesRoutes).
func (s *Server) routeTable() []route {
	get := []string{http.MethodGet, http.MethodHead}
	post := []string{http.MethodPost}
	return []route{
		{"/{$}", "ui", get, true, s.page},
		{"/openapi.json", "openapi", get, true, s.openAPI},
		{"/healthz", "healthz", get, true, s.healthz},
		{"/v2", "v2", get, false, s.serverMetadata},
		{"/v2/health/live", "live", get, true, s.live},
		{"/v2/health/ready", "ready", get, true, s.ready},
		{"/v2/models/stats", "stats", get, false, s.statistics},
		{"/v2/models/{name}", "model_metadata", get, false, s.modelMetadata},
		{"/v2/models/{name}/ready", "model_ready", get, false, s.modelReady},
		{"/v2/models/{name}/infer", "infer", post, false, s.infer},
		{"/v2/models/{name}/stats", "stats", get, false, s.statistics},
		{"/v2/models/{name}/versions/{version}", "model_metadata", get, false, s.modelMetadata},
		{"/v2/models/{name}/versions/{version}/ready", "model_ready", get, false, s.modelReady},
		{"/v2/models/{name}/versions/{version}/infer", "infer", post, false, s.infer},
		{"/v2/models/{name}/versions/{version}/stats", "stats", get, false, s.statistics},
		{"/v2/repository/index", "repository_index", []string{http.MethodGet, http.MethodHead, http.MethodPost}, false, s.repositoryIndex},
		{"/v2/repository/models/{name}/load", "repository_load", post, false, s.repositoryLoad},
		{"/v2/repository/models/{name}/unload", "repository_unload", post, false, s.repositoryUnload},
		{"/v1/models", "models", get, false, s.listModels},
		{"/v1/models/{name}/predict", "predict", post, false, s.predict},
		{"/v1/models/{name}/versions/{version}/predict", "predict", post, false, s.predict},
		{"/metrics", "metrics", get, false, s.metricsHandler()},
		{"/", "unmatched", nil, true, func(*reqCtx, http.ResponseWriter, *http.Request) error {
			return fmt.Errorf("%w: no such endpoint (see /openapi.json)", ErrNotFound)
		}},
	}
}

// cors sets the CORS headers for an allowed Origin (Config.CORSOrigins)
// and reports whether r is a preflight request, answered here.
func (s *Server) cors(w http.ResponseWriter, r *http.Request) (preflight bool) {
	origin := r.Header.Get("Origin")
	if origin == "" || len(s.cfg.CORSOrigins) == 0 {
		return false
	}
	allowed := slices.Contains(s.cfg.CORSOrigins, "*") || slices.Contains(s.cfg.CORSOrigins, origin)
	w.Header().Add("Vary", "Origin")
	if !allowed {
		return false
	}
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", origin)
	h.Set("Access-Control-Expose-Headers", "X-Request-Id, Retry-After, "+api.HeaderInferenceContentLength)
	if r.Method != http.MethodOptions || r.Header.Get("Access-Control-Request-Method") == "" {
		return false
	}
	h.Set("Access-Control-Allow-Methods", "GET, HEAD, POST, OPTIONS")
	h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, X-Request-Id, "+api.HeaderInferenceContentLength)
	h.Set("Access-Control-Max-Age", "600")
	return true
}

// wrap applies the method check, authentication and error writing.
func (s *Server) wrap(rt route) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		rc := r.Context().Value(reqCtxKey{}).(*reqCtx)
		rc.route = rt.name
		err := s.check(rt, w, r)
		if err == nil {
			err = rt.h(rc, w, r)
		}
		if err != nil {
			if rc.w.code == 0 {
				code := writeError(w, err)
				if code == statusClientClosed {
					rc.w.code = code
				}
			}
			rc.err = err
		}
	}
}

func (s *Server) check(rt route, w http.ResponseWriter, r *http.Request) error {
	if rt.methods != nil && !slices.Contains(rt.methods, r.Method) {
		w.Header().Set("Allow", strings.Join(rt.methods, ", "))
		return fmt.Errorf("%w: %s %s (allowed: %s)", ErrMethodNotAllowed, r.Method, r.URL.Path, strings.Join(rt.methods, ", "))
	}
	if rt.public || s.cfg.AuthToken == "" {
		return nil
	}
	return s.authorized(r)
}

// authorized checks the request's bearer token against Config.AuthToken.
func (s *Server) authorized(r *http.Request) error {
	return s.authorizedHeader(r.Header.Get("Authorization"))
}

// authorizedHeader checks an Authorization value (HTTP header or gRPC
// metadata) against Config.AuthToken.
func (s *Server) authorizedHeader(auth string) error {
	scheme, token, ok := strings.Cut(auth, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return fmt.Errorf("%w: send \"Authorization: Bearer <token>\"", ErrUnauthorized)
	}
	// Compare digests: constant time and independent of the token length.
	got, want := sha256.Sum256([]byte(strings.TrimSpace(token))), sha256.Sum256([]byte(s.cfg.AuthToken))
	if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
		return fmt.Errorf("%w: wrong bearer token", ErrUnauthorized)
	}
	return nil
}
