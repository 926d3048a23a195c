package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/bitrun/bitrun/export"
	"github.com/bitrun/bitrun/export/meta"
	"github.com/bitrun/bitrun/export/onnxpb"
	"github.com/bitrun/bitrun/finetune"
	"github.com/bitrun/bitrun/model"
	"github.com/bitrun/bitrun/serve"
	"github.com/bitrun/bitrun/train"
)

// newServeCmd is the serve command with its flags bound to o (main gives
// it fresh options, tests read them).
func newServeCmd(o *serveOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve (--onnx FILE ... | --weights FILE | --model NAME | --model-repository DIR | --model-dir DIR) [flags]",
		Short: "Serve image classifiers over HTTP: raw-image predict, KServe v2, Prometheus metrics",
		Long: `Serve one or more ONNX image classifiers over HTTP with dynamic batching.

Endpoints (see package serve):
  POST /v1/models/NAME/predict   image body (image/*) or multipart "file" parts; ?top_k=K
  GET  /v1/models                served models
  GET  /v2, /v2/health/live, /v2/health/ready, /healthz
  GET  /v2/models/NAME           inputs/outputs, labels, preprocessing, file SHA-256
  GET  /v2/models/NAME/ready
  POST /v2/models/NAME/infer     KServe v2 tensors (JSON or binary), classification, UINT8 pixels
  GET  /v2/models/NAME/versions/V[/ready|/infer|/stats], /v2/models[/NAME]/stats
  GET|POST /v2/repository/index, POST /v2/repository/models/NAME/load|unload
  GET  /metrics                  Prometheus
  GET  /                         a page to try a model; /openapi.json describes every route

--model-repository DIR serves Triton's layout, DIR/NAME/VERSION/model.onnx
with an optional DIR/NAME/config.json (batching, labels, normalisation,
instance count, version policy); models load and reload through the
repository API without dropping requests, and --repository-poll picks up
new, changed and removed models.

--model-dir DIR takes a folder as KServe mounts it at /mnt/models: one
model (DIR/model.onnx or the folder's only .onnx file, served under --name,
as a ServingRuntime passes {{.Name}}) or else a repository as above.

--onnx may be repeated; each model is named by the matching --name (in
order) or its file name. --weights/--model serve a checkpoint (or a zoo
model) exported to ONNX at start-up. The server listens at once (live), and
reports ready after every model is loaded and warmed with one batch.
--grpc-addr HOST:PORT also serves the KServe v2 gRPC protocol
(inference.GRPCInferenceService: ServerLive, ServerReady, ModelReady,
ServerMetadata, ModelMetadata, ModelInfer) with the same models, limits,
bearer token (metadata "authorization: Bearer TOKEN") and metrics.

SIGTERM or Ctrl-C drains: readiness turns 503, requests and gRPC calls in
flight finish within --grace, then the process exits 0.

Defaults are safe for untrusted clients on this machine: loopback address,
capped bodies and pixels, every timeout set. Binding another address
without --auth-token-file logs a warning.`,
		Example: `  bitrun serve --onnx tiny.onnx
  curl --data-binary @cat.jpg -H 'Content-Type: image/jpeg' 'http://127.0.0.1:8080/v1/models/tiny/predict?top_k=3'
  bitrun serve --onnx a.onnx --name cats --onnx b.onnx --name dogs --max-batch 32 --log-format json`,
		Args: cobra.NoArgs,
		RunE: runE(bound(o, serveFlags), runServe),
	}
	f := cmd.Flags()
	f.StringArrayVar(&o.onnx, "onnx", nil, "ONNX model file (repeatable)")
	f.StringArrayVar(&o.names, "name", nil, "model name in URLs, one per model in order (default: file name without extension)")
	addWeightsFlags(cmd, &o.weights)
	f.IntVar(&o.resolution, "resolution", export.DefaultResolution, "with --weights/--model: image side the checkpoint is exported at (a run folder's weights default to the resolution the run recorded)")
	f.StringVar(&o.labelsFile, "labels", "", "with --weights/--model: class names file (one per line or a JSON array)")
	// The rest have configuration keys, read by serveFlags.
	f.String("addr", "127.0.0.1:8080", "listen address (host:port); port 0 picks a free one")
	f.String("grpc-addr", "", "also serve the KServe v2 gRPC protocol (inference.GRPCInferenceService) at this address (host:port; empty: no gRPC), sharing the models, limits, token and metrics")
	f.Int("max-batch", 16, "largest batch sent to a model")
	f.Duration("batch-delay", 5*time.Millisecond, "longest an image waits for others to share its batch (0: the default 5ms; negative: no wait)")
	f.Int("max-queue", 0, "images waiting per model before 503 (default 64 × max-batch)")
	f.String("max-queue-memory", "256MiB", "bytes of preprocessed images waiting per model (caps --max-queue; never below --max-batch images)")
	f.Int("workers", 0, "batches run concurrently per model (0 = auto: on the CPU with --threads 0, min(2, cores) workers splitting the cores)")
	f.Int("top-k", 5, "predictions returned when the request has no top_k")
	f.String("max-body", "16MiB", "request body cap (413 beyond), e.g. 16MiB, 512KiB")
	f.String("max-pixels", "40M", "per-image pixel cap checked before decoding (413 beyond), e.g. 40M")
	f.Int("max-images", 16, "images per request (multipart parts or infer batch)")
	f.Int("max-in-flight", 256, "predict/infer requests decoded and run at once, slots taken once the body is in (503 beyond)")
	f.String("max-decode-memory", "512MiB", "memory of the image decodes in progress together, charged 12 bytes per pixel from each header before decoding (requests wait for room; at least 12 × max-pixels)")
	f.String("max-body-memory", "1GiB", "request body bytes (with their parsing copies) all requests together hold in memory (503 beyond; at least 2 × max-body, at most 2 × max-in-flight × max-body)")
	f.Duration("timeout", 30*time.Second, "inference deadline per request (504 beyond)")
	f.Duration("body-timeout", 10*time.Second, "time to receive a predict/infer body once its headers are in (408 beyond; 0: 10s; negative: only the 60s read timeout)")
	f.Duration("grace", 30*time.Second, "shutdown: how long requests in flight may take to finish")
	f.Duration("drain-delay", 0, "shutdown: how long readiness reports 503 before the listener closes")
	f.String("auth-token-file", "", "file holding a bearer token every route but the health probes requires")
	f.String("log-format", "text", "log format on stderr: text or json")
	f.String("model-repository", "", "serve the models of a Triton-style repository folder (DIR/NAME/VERSION/model.onnx)")
	f.String("model-dir", "", "a folder holding one model (model.onnx or a single .onnx file, named by --name) or a model repository, as KServe mounts /mnt/models")
	f.Duration("repository-poll", 0, "with --model-repository: rescan interval for new, changed and removed models (0: no polling)")
	f.StringArray("cors-origin", nil, "origin allowed to call the API from a browser (repeatable, or separated by commas or spaces in BITRUN_SERVE_CORS_ORIGINS; \"*\" for any)")
	addORTFlags(cmd)
	for key, flag := range map[string]string{
		"serve.addr":              "addr",
		"serve.grpc_addr":         "grpc-addr",
		"serve.max_batch":         "max-batch",
		"serve.batch_delay":       "batch-delay",
		"serve.max_queue":         "max-queue",
		"serve.max_queue_memory":  "max-queue-memory",
		"serve.workers":           "workers",
		"serve.top_k":             "top-k",
		"serve.max_body":          "max-body",
		"serve.max_pixels":        "max-pixels",
		"serve.max_images":        "max-images",
		"serve.max_in_flight":     "max-in-flight",
		"serve.max_body_memory":   "max-body-memory",
		"serve.max_decode_memory": "max-decode-memory",
		"serve.timeout":           "timeout",
		"serve.body_timeout":      "body-timeout",
		"serve.grace":             "grace",
		"serve.drain_delay":       "drain-delay",
		"serve.auth_token_file":   "auth-token-file",
		"serve.log_format":        "log-format",
	} {
		bindKey(cmd, key, flag)
	}
	bindKey(cmd, "serve.model_repository", "model-repository")
	bindKey(cmd, "serve.model_dir", "model-dir")
	bindKey(cmd, "serve.repository_poll", "repository-poll")
	bindKey(cmd, "serve.cors_origins", "cors-origin")
	return cmd
}

// serveOptions is what serve runs, filled from flags and configuration by
// serveFlags, checked (and its model list built) by validate, then run by
// runServe without cobra.
type serveOptions struct {
	onnx          []string      // --onnx files, in order
	names         []string      // --name values, in order
	weights       weightsRef    // --weights, or --model pulled (unless offline) after the server listens
	resolution    int           // export resolution of --weights/--model
	resolutionSet bool          // --resolution given: a run folder's recorded resolution does not apply
	labelsFile    string        // --labels for --weights/--model
	labels        []string      // read from labelsFile by validate, before any download or export
	modelDir      string        // --model-dir (KServe's /mnt/models)
	repoDir       string        // --model-repository, or a --model-dir holding a repository after validate
	poll          time.Duration // --repository-poll; 0: no polling
	grpcAddr      string        // --grpc-addr; "": no gRPC
	logFormat     string        // text or json
	logLevel      slog.Level
	authTokenFile string
	grace         time.Duration // shutdown: how long requests in flight may take
	server        serve.Config  // listener, limits and timeouts (AuthToken and Logger are set by runServe)
	model         serve.Options // batching and runtime of every model (Name and Logger are set by runServe)
	models        []serveModel  // built by validate
}

// serveModel is one model to load: an ONNX file, or the --weights/--model
// checkpoint to export at start-up.
type serveModel struct {
	name       string
	onnx       string // ONNX file; "" for the checkpoint
	checkpoint bool   // export --weights/--model
}

// serveFlags completes serveOptions with every configuration key; a bad
// value is a usage error naming its key and source.
func serveFlags(cmd *cobra.Command, _ []string, o *serveOptions) error {
	if err := o.weights.complete(cmd); err != nil {
		return err
	}
	o.resolutionSet = cmd.Flags().Changed("resolution")
	o.logFormat = strings.ToLower(cfg.GetString("serve.log_format"))
	_ = o.logLevel.UnmarshalText([]byte(cfg.GetString("log.level"))) // flag, BITRUN_LOG_LEVEL or config; checked by checkGlobalConfig
	o.authTokenFile = cfg.GetString("serve.auth_token_file")
	o.grpcAddr = cfg.GetString("serve.grpc_addr")
	o.modelDir = cfg.GetString("serve.model_dir")
	o.repoDir = cfg.GetString("serve.model_repository")

	maxPixels, err := parseCount(cfg.GetString("serve.max_pixels"))
	if err != nil {
		return configValueError(cmd, "serve.max_pixels", cfg.GetString("serve.max_pixels"), "is not a count", "a count such as 40M or 40000000")
	}
	if maxPixels > 1<<31 {
		return configValueError(cmd, "serve.max_pixels", cfg.GetString("serve.max_pixels"), "is out of range", fmt.Sprintf("a count from 1 to %d", int64(1)<<31))
	}
	o.server = serve.Config{Addr: cfg.GetString("serve.addr"), MaxPixels: int(maxPixels)}
	var queueMemory int64
	for _, c := range []struct {
		key, example string
		dst          *int64
	}{
		{"serve.max_body", "16MiB", &o.server.MaxBody},
		{"serve.max_body_memory", "1GiB", &o.server.MaxBodyMemory},
		{"serve.max_decode_memory", "512MiB", &o.server.MaxDecodeMemory},
		{"serve.max_queue_memory", "256MiB", &queueMemory},
	} {
		if *c.dst, err = configByteSize(cmd, c.key, c.example); err != nil {
			return err
		}
	}
	o.server.Version, o.server.Commit = buildVersion()
	o.server.CORSOrigins = configList("serve.cors_origins")
	o.model = serve.Options{MaxPixels: int(maxPixels), MaxQueueMemory: queueMemory}
	// Every numeric setting is parsed strictly: a bad value names its key,
	// the value, where it came from and the allowed range. Each maps
	// straight onto its serve field (zero: the default, negative: off).
	if err := configInts(cmd,
		intKey{"serve.max_batch", 1, 4096, &o.model.MaxBatch},
		intKey{"serve.max_queue", 0, math.MaxInt, &o.model.MaxQueue},
		intKey{"serve.workers", 0, 64, &o.model.Workers},
		intKey{"serve.top_k", 1, math.MaxInt, &o.model.TopK},
		intKey{"serve.max_images", 1, 1024, &o.server.MaxImages},
		intKey{"serve.max_in_flight", 1, math.MaxInt, &o.server.MaxInFlight},
	); err != nil {
		return err
	}
	for _, c := range []struct {
		key    string
		lo, hi time.Duration
		dst    *time.Duration
	}{
		{"serve.batch_delay", -time.Minute, time.Minute, &o.model.BatchDelay},
		{"serve.timeout", time.Nanosecond, math.MaxInt64, &o.server.RequestTimeout},
		{"serve.body_timeout", -time.Nanosecond, time.Hour, &o.server.BodyTimeout},
		{"serve.drain_delay", 0, math.MaxInt64, &o.server.DrainDelay},
		{"serve.grace", time.Nanosecond, math.MaxInt64, &o.grace},
		{"serve.repository_poll", 0, math.MaxInt64, &o.poll},
	} {
		if *c.dst, err = configDuration(cmd, c.key, c.lo, c.hi); err != nil {
			return err
		}
	}
	if o.model.Runtime, err = ortOptions(cmd); err != nil {
		return err
	}
	return nil
}

// validate checks the options as usage errors (a missing --onnx file is a
// plain error) and builds o.models: the models to serve, named in order.
func (o *serveOptions) validate() error {
	if o.logFormat != "text" && o.logFormat != "json" {
		return usagef("--log-format %q: want text or json", o.logFormat)
	}
	if _, _, err := net.SplitHostPort(o.server.Addr); err != nil {
		return usagef("--addr %q: %v", o.server.Addr, err)
	}
	if err := o.weights.check(); err != nil {
		return err
	}
	o.models = nil
	for _, p := range o.onnx {
		o.models = append(o.models, serveModel{onnx: p, name: defaultModelName(p)})
	}
	if o.weights.given() {
		if o.resolution != 0 { // 0: the export's default
			if err := checkResolution("--resolution", o.resolution, false); err != nil {
				return err
			}
		}
		name := o.weights.name
		if name == "" {
			name = defaultModelName(o.weights.file)
		}
		o.models = append(o.models, serveModel{name: name, checkpoint: true})
		if o.labelsFile != "" {
			var err error
			if o.labels, err = readLabels("serve", o.labelsFile, meta.ParseLabels); err != nil {
				return err
			}
		}
	} else if o.labelsFile != "" {
		return usagef("--labels %s: labels go with --weights/--model (an ONNX model carries its own: export it with --labels)", o.labelsFile)
	}
	if o.modelDir != "" {
		if o.repoDir != "" || len(o.models) > 0 {
			return usagef("give either --model-dir or models (--onnx, --weights, --model, --model-repository), not both")
		}
		file, err := resolveModelDir(o.modelDir)
		switch {
		case err != nil:
			return err
		case file != "":
			o.models = append(o.models, serveModel{onnx: file, name: defaultModelName(file)})
		case len(o.names) > 1:
			return usagef("--model-dir %q is a model repository: give at most one --name", o.modelDir)
		case len(o.names) == 1 && !repositoryHasModel(o.modelDir, o.names[0]):
			return usagef("--name %q: the model repository %s has no folder %q (KServe passes the InferenceService name: name the model's folder after it)", o.names[0], o.modelDir, o.names[0])
		default:
			o.repoDir, o.names = o.modelDir, nil
		}
	}
	switch {
	case o.repoDir != "" && len(o.models) > 0:
		return usagef("give either --model-repository or models (--onnx, --weights, --model), not both")
	case o.repoDir == "" && o.poll > 0:
		return usagef("--repository-poll needs --model-repository")
	case o.repoDir != "":
		if fi, err := os.Stat(o.repoDir); err != nil || !fi.IsDir() {
			return usagef("--model-repository %q: not a folder", o.repoDir)
		}
	case len(o.models) == 0:
		return usagef("give a model: --onnx FILE (repeatable), --weights FILE or --model NAME, or --model-repository DIR or --model-dir DIR")
	}
	if len(o.names) > len(o.models) {
		return usagef("%d --name values for %d models", len(o.names), len(o.models))
	}
	seen := map[string]bool{}
	for i := range o.models {
		m := &o.models[i]
		if i < len(o.names) {
			m.name = o.names[i]
		}
		if !serve.ValidName(m.name) {
			return usagef("model name %q: use 1-128 of A-Z a-z 0-9 . _ - (set it with --name)", m.name)
		}
		if seen[m.name] {
			return usagef("two models named %q: give distinct --name values", m.name)
		}
		seen[m.name] = true
		if m.onnx != "" {
			if _, err := os.Stat(m.onnx); err != nil {
				return fmt.Errorf("serve: %w", err)
			}
		}
	}
	return nil
}

// runServe serves o.models (or o.repoDir) until ctx ends, then drains:
// readiness turns 503 and requests in flight get o.grace to finish. It
// listens at once (live) and loads the models behind the listener (ready
// once every one is loaded). Logs go to stderr; serve writes no data to
// stdout.
func runServe(ctx context.Context, o serveOptions, stdout, stderr io.Writer) error {
	log := serveLogger(o.logFormat, o.logLevel, stderr)
	srv, err := newServeServer(o, log)
	if err != nil {
		return err
	}
	served, err := listenServe(srv, o, log)
	if err != nil {
		return err
	}

	loadCtx, cancelLoad := context.WithCancel(ctx)
	defer cancelLoad()
	loaded := make(chan error, 1)
	if o.repoDir != "" {
		go func() { loaded <- serveRepository(loadCtx, srv, o, log) }()
	} else {
		go func() { loaded <- loadServeModels(loadCtx, srv, o, log) }()
	}

	for {
		select {
		case err := <-loaded:
			loaded = nil
			if err != nil {
				return errors.Join(err, srv.Close())
			}
			log.Info("ready", "models", len(o.models))
		case err := <-served:
			return errors.Join(fmt.Errorf("serve: %w", err), srv.Close())
		case <-ctx.Done():
			cancelLoad()
			log.Info("signal received: draining", "grace", o.grace)
			sctx, cancel := context.WithTimeout(context.Background(), o.grace)
			err := srv.Shutdown(sctx)
			cancel()
			if err != nil {
				return fmt.Errorf("serve: requests still running after the %v grace period were cut off: %w", o.grace, err)
			}
			log.Info("stopped")
			return nil
		}
	}
}

// newServeServer reads the bearer token, warns about an open address
// without one, and makes the server.
func newServeServer(o serveOptions, log *slog.Logger) (*serve.Server, error) {
	scfg := o.server
	scfg.Logger = log
	if o.authTokenFile != "" {
		var err error
		if scfg.AuthToken, err = readToken(o.authTokenFile, log); err != nil {
			return nil, err
		}
	}
	if host, _, err := net.SplitHostPort(scfg.Addr); err == nil && !isLoopbackHost(host) && scfg.AuthToken == "" {
		log.Warn("listening beyond this machine without --auth-token-file: anyone who can reach it can use the models", "addr", scfg.Addr)
	}
	return serve.NewServer(scfg)
}

// listenServe starts serving HTTP, and gRPC when o.grpcAddr is set; a
// server that stops sends its error on the returned channel.
func listenServe(srv *serve.Server, o serveOptions, log *slog.Logger) (<-chan error, error) {
	l, err := net.Listen("tcp", o.server.Addr)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("serve: %w", err), srv.Close())
	}
	log.Info("listening", "url", "http://"+l.Addr().String(), "models", len(o.models))
	served := make(chan error, 2)
	go func() { served <- srv.Serve(l) }()
	if o.grpcAddr != "" {
		gl, err := net.Listen("tcp", o.grpcAddr)
		if err != nil {
			return nil, errors.Join(fmt.Errorf("serve: --grpc-addr: %w", err), srv.Close())
		}
		log.Info("listening", "grpc", gl.Addr().String())
		go func() {
			if err := srv.ServeGRPC(gl); err != nil {
				served <- err
			}
		}()
	}
	return served, nil
}

// serveRepository opens the model repository o.repoDir into srv and keeps
// it (polling when asked) until ctx ends. It returns nil once the
// repository is open, even when some of its models failed (they are
// logged; the others serve), and an error only when it cannot be opened.
func serveRepository(ctx context.Context, srv *serve.Server, o serveOptions, log *slog.Logger) error {
	opts := o.model
	opts.Logger, opts.Runtime.Logger = log, log
	repo, err := serve.OpenRepository(o.repoDir, srv, serve.RepositoryOptions{Options: opts, Poll: o.poll, Logger: log})
	if repo == nil {
		return err
	}
	if err != nil {
		log.Warn("some models of the repository failed to load; the others serve (see /v2/repository/index)", "error", err)
	}
	go func() {
		<-ctx.Done()
		repo.Close()
	}()
	return nil
}

// loadServeModels opens (or exports then opens) each model and publishes
// them all at once, so that readiness covers every model.
func loadServeModels(ctx context.Context, srv *serve.Server, o serveOptions, log *slog.Logger) error {
	var opened []*serve.Classifier
	fail := func(err error) error {
		for _, c := range opened {
			err = errors.Join(err, c.Close())
		}
		return err
	}
	for _, m := range o.models {
		if err := ctx.Err(); err != nil {
			return fail(err)
		}
		path := m.onnx
		if m.checkpoint {
			p, cleanup, err := exportForServe(ctx, o, log)
			if err != nil {
				return fail(err)
			}
			defer cleanup()
			path = p
		}
		opts := o.model
		opts.Name, opts.Logger, opts.Runtime.Logger = m.name, log, log
		c, err := serve.Open(path, opts)
		if err != nil {
			return fail(err)
		}
		opened = append(opened, c)
	}
	return srv.Add(opened...)
}

// exportForServe exports the --weights/--model checkpoint (pulling a zoo
// model first) to a temporary ONNX file; cleanup removes it (ONNX Runtime
// has read it by then).
func exportForServe(ctx context.Context, o serveOptions, log *slog.Logger) (string, func(), error) {
	weights, err := o.weights.resolve(ctx)
	if err != nil {
		return "", nil, err
	}
	// A run folder's weights keep what the run recorded: the labels and the
	// test resolution of its model.onnx (finetune), or the trained
	// resolution of its config.json (train), unless the flags say otherwise.
	resolution := o.resolution
	runRes, labels := runFolderMeta(weights)
	if !o.resolutionSet && runRes > 0 {
		resolution = runRes
	}
	if o.labels != nil {
		labels = o.labels
	}
	m, err := model.Load(weights)
	if err != nil {
		return "", nil, err
	}
	dir, err := os.MkdirTemp("", "bitrun-serve-")
	if err != nil {
		return "", nil, fmt.Errorf("serve: %w", err)
	}
	cleanup := func() { _ = os.RemoveAll(dir) }
	out := filepath.Join(dir, defaultModelName(weights)+".onnx")
	if _, err := export.Export(ctx, out, m.Config, m.Params, export.Options{Resolution: resolution, Labels: labels, Logger: log}); err != nil {
		cleanup()
		return "", nil, err
	}
	return out, cleanup, nil
}

// serveLogger logs to w in text or JSON at level.
func serveLogger(format string, level slog.Level, w io.Writer) *slog.Logger {
	ho := &slog.HandlerOptions{Level: level}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, ho))
	}
	return slog.New(slog.NewTextHandler(w, ho))
}

// readToken reads a bearer token file (surrounding whitespace trimmed).
func readToken(path string, log *slog.Logger) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("serve: auth token: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		log.Warn("auth token file is readable by other users; chmod 600 it", "file", path, "mode", fi.Mode().Perm().String())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("serve: auth token: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" || strings.ContainsAny(tok, " \t\r\n") {
		return "", usagef("--auth-token-file %s: want one non-empty token without spaces", path)
	}
	return tok, nil
}

// isLoopbackHost reports whether a listen host stays on this machine.
func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// parseByteSize reads a byte count: a number with an optional unit B, KiB,
// MiB, GiB (or K, M, G, same), KB, MB, GB (powers of 1000).
func parseByteSize(s string) (int64, error) {
	return parseWithUnits(s, map[string]int64{
		"": 1, "b": 1, "k": 1 << 10, "kib": 1 << 10, "m": 1 << 20, "mib": 1 << 20, "g": 1 << 30, "gib": 1 << 30,
		"kb": 1e3, "mb": 1e6, "gb": 1e9,
	})
}

// parseCount reads a count with an optional decimal suffix K, M, G.
func parseCount(s string) (int64, error) {
	return parseWithUnits(s, map[string]int64{"": 1, "k": 1e3, "m": 1e6, "g": 1e9})
}

func parseWithUnits(s string, units map[string]int64) (int64, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.') {
		i++
	}
	num, unit := t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	mult, ok := units[unit]
	if num == "" || !ok {
		return 0, fmt.Errorf("%q: want a number with an optional unit", s)
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, fmt.Errorf("%q: %w", s, err)
	}
	n := v * float64(mult)
	if n < 1 || n > 1<<53 {
		return 0, fmt.Errorf("%q: out of range", s)
	}
	return int64(n), nil
}

// defaultModelName is the served name of a model file: its name without
// the extension, or, for the model.onnx or weights.npz of a run folder,
// the folder's name (runs/fmnist/model.onnx is served as "fmnist").
func defaultModelName(path string) string {
	name := serve.ModelName(path)
	if name == "model" || name == "weights" {
		if dir := filepath.Base(filepath.Dir(filepath.Clean(path))); serve.ValidName(dir) && dir != "." {
			return dir
		}
	}
	return name
}

// runFolderMeta returns the resolution and labels a run folder recorded
// beside weights: the bitrun metadata of its model.onnx (finetune), else
// the resolution in its config.json (train). Zero and nil when there is
// none.
func runFolderMeta(weights string) (int, []string) {
	dir := filepath.Dir(weights)
	if f, err := os.Open(filepath.Join(dir, finetune.ModelFile)); err == nil {
		defer f.Close()
		if h, err := onnxpb.ReadHeader(f); err == nil {
			if m, err := meta.Parse(h.Metadata()); err == nil {
				return m.Resolution, m.Labels
			}
		}
	}
	if b, err := os.ReadFile(filepath.Join(dir, train.ConfigFile)); err == nil {
		var c struct {
			Options train.Options `json:"options"`
		}
		if json.Unmarshal(b, &c) == nil && c.Options.Resolution > 0 {
			return c.Options.Resolution, nil
		}
	}
	return 0, nil
}
