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

	"github.com/bitrun/bitrun/export"
	"github.com/bitrun/bitrun/export/onnxpb"
	"github.com/bitrun/bitrun/finetune"
	"github.com/bitrun/bitrun/model"
	"github.com/bitrun/bitrun/serve"
	"github.com/bitrun/bitrun/train"
	"github.com/spf13/cobra"
)

func newServeCmd() *cobra.Command {
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
		RunE: runServe,
	}
	f := cmd.Flags()
	f.StringArray("onnx", nil, "ONNX model file (repeatable)")
	f.StringArray("name", nil, "model name in URLs, one per model in order (default: file name without extension)")
	addWeightsFlags(cmd)
	f.Int("resolution", export.DefaultResolution, "with --weights/--model: image side the checkpoint is exported at (a run folder's weights default to the resolution the run recorded)")
	f.String("labels", "", "with --weights/--model: class names file (one per line or a JSON array)")
	f.String("addr", "127.0.0.1:8080", "listen address (host:port); port 0 picks a free one")
	f.String("grpc-addr", "", "also serve the KServe v2 gRPC protocol (inference.GRPCInferenceService) at this address (host:port; empty: no gRPC), sharing the models, limits, token and metrics")
	f.Int("max-batch", 16, "largest batch sent to a model")
	f.Duration("batch-delay", 5*time.Millisecond, "longest an image waits for others to share its batch (0: no wait)")
	f.Int("max-queue", 0, "images waiting per model before 503 (default 64 × max-batch)")
	f.Int("workers", 0, "batches run concurrently per model (0 = auto: on the CPU with --threads 0, min(2, cores) workers splitting the cores)")
	f.Int("top-k", 5, "predictions returned when the request has no top_k")
	f.String("max-body", "16MiB", "request body cap (413 beyond), e.g. 16MiB, 512KiB")
	f.String("max-pixels", "40M", "per-image pixel cap checked before decoding (413 beyond), e.g. 40M")
	f.Int("max-images", 16, "images per request (multipart parts or infer batch)")
	f.Int("max-in-flight", 256, "predict/infer requests decoded and run at once, slots taken once the body is in (503 beyond; bodies in memory <= 2 × this × max-body)")
	f.Duration("timeout", 30*time.Second, "inference deadline per request (504 beyond)")
	f.Duration("grace", 30*time.Second, "shutdown: how long requests in flight may take to finish")
	f.Duration("drain-delay", 0, "shutdown: how long readiness reports 503 before the listener closes")
	f.String("auth-token-file", "", "file holding a bearer token every route but the health probes requires")
	f.String("log-format", "text", "log format on stderr: text or json")
	f.String("model-repository", "", "serve the models of a Triton-style repository folder (DIR/NAME/VERSION/model.onnx)")
	f.String("model-dir", "", "a folder holding one model (model.onnx or a single .onnx file, named by --name) or a model repository, as KServe mounts /mnt/models")
	f.Duration("repository-poll", 0, "with --model-repository: rescan interval for new, changed and removed models (0: no polling)")
	f.StringArray("cors-origin", nil, "origin allowed to call the API from a browser (repeatable; \"*\" for any)")
	addORTFlags(cmd)
	for key, flag := range map[string]string{
		"serve.addr":            "addr",
		"serve.grpc_addr":       "grpc-addr",
		"serve.max_batch":       "max-batch",
		"serve.batch_delay":     "batch-delay",
		"serve.max_queue":       "max-queue",
		"serve.workers":         "workers",
		"serve.top_k":           "top-k",
		"serve.max_body":        "max-body",
		"serve.max_pixels":      "max-pixels",
		"serve.max_images":      "max-images",
		"serve.max_in_flight":   "max-in-flight",
		"serve.timeout":         "timeout",
		"serve.grace":           "grace",
		"serve.drain_delay":     "drain-delay",
		"serve.auth_token_file": "auth-token-file",
		"serve.log_format":      "log-format",
	} {
		bindKey(cmd, key, flag)
	}
	bindKey(cmd, "serve.model_repository", "model-repository")
	bindKey(cmd, "serve.model_dir", "model-dir")
	bindKey(cmd, "serve.repository_poll", "repository-poll")
	bindKey(cmd, "serve.cors_origins", "cors-origin")
	return cmd
}

// serveModel is one model to load: an ONNX file, or a checkpoint to export.
type serveModel struct {
	name    string
	onnx    string
	weights string
}

func runServe(cmd *cobra.Command, _ []string) error {
	f := cmd.Flags()
	onnxFiles, _ := f.GetStringArray("onnx")
	names, _ := f.GetStringArray("name")
	logFormat := strings.ToLower(cfg.GetString("serve.log_format"))
	if logFormat != "text" && logFormat != "json" {
		return usagef("--log-format %q: want text or json", logFormat)
	}
	log := serveLogger(cmd, logFormat, cmd.ErrOrStderr())

	maxBody, err := parseByteSize(cfg.GetString("serve.max_body"))
	if err != nil {
		return configValueError(cmd, "serve.max_body", cfg.GetString("serve.max_body"), "is not a size", "a size such as 16MiB, 512KiB or a byte count")
	}
	maxPixels, err := parseCount(cfg.GetString("serve.max_pixels"))
	if err != nil {
		return configValueError(cmd, "serve.max_pixels", cfg.GetString("serve.max_pixels"), "is not a count", "a count such as 40M or 40000000")
	}
	if maxBody < 1 {
		return configValueError(cmd, "serve.max_body", cfg.GetString("serve.max_body"), "is out of range", "a size of at least 1 byte")
	}
	if maxPixels < 1 || maxPixels > 1<<31 {
		return configValueError(cmd, "serve.max_pixels", cfg.GetString("serve.max_pixels"), "is out of range", fmt.Sprintf("a count from 1 to %d", int64(1)<<31))
	}
	scfg := serve.Config{
		Addr:      cfg.GetString("serve.addr"),
		MaxBody:   maxBody,
		MaxPixels: int(maxPixels),
		Logger:    log,
	}
	scfg.Version, scfg.Commit = buildVersion()
	scfg.CORSOrigins = cfg.GetStringSlice("serve.cors_origins")
	repoDir := cfg.GetString("serve.model_repository")
	opts := serve.Options{MaxPixels: int(maxPixels), Logger: log}
	var grace time.Duration
	// Every numeric setting is parsed strictly: a bad value names its key,
	// the value, where it came from and the allowed range.
	for _, c := range []struct {
		key    string
		lo, hi int
		dst    *int
	}{
		{"serve.max_batch", 1, 4096, &opts.MaxBatch},
		{"serve.max_queue", 0, math.MaxInt, &opts.MaxQueue},
		{"serve.workers", 0, 64, &opts.Workers},
		{"serve.top_k", 1, math.MaxInt, &opts.TopK},
		{"serve.max_images", 1, 1024, &scfg.MaxImages},
		{"serve.max_in_flight", 1, math.MaxInt, &scfg.MaxInFlight},
	} {
		if *c.dst, err = configInt(cmd, c.key, c.lo, c.hi); err != nil {
			return err
		}
	}
	for _, c := range []struct {
		key    string
		lo, hi time.Duration
		dst    *time.Duration
	}{
		{"serve.batch_delay", 0, time.Minute, &opts.BatchDelay},
		{"serve.timeout", time.Nanosecond, math.MaxInt64, &scfg.RequestTimeout},
		{"serve.drain_delay", 0, math.MaxInt64, &scfg.DrainDelay},
		{"serve.grace", time.Nanosecond, math.MaxInt64, &grace},
	} {
		if *c.dst, err = configDuration(cmd, c.key, c.lo, c.hi); err != nil {
			return err
		}
	}
	if opts.BatchDelay == 0 {
		opts.BatchDelay = -1 // serve.Options: negative means no wait, zero the default
	}
	if tf := cfg.GetString("serve.auth_token_file"); tf != "" {
		if scfg.AuthToken, err = readToken(tf, log); err != nil {
			return err
		}
	}
	if host, _, err := net.SplitHostPort(scfg.Addr); err != nil {
		return usagef("--addr %q: %v", scfg.Addr, err)
	} else if !isLoopbackHost(host) && scfg.AuthToken == "" {
		log.Warn("listening beyond this machine without --auth-token-file: anyone who can reach it can use the models", "addr", scfg.Addr)
	}

	// The models to serve, named in order.
	var models []serveModel
	for _, p := range onnxFiles {
		models = append(models, serveModel{onnx: p, name: defaultModelName(p)})
	}
	weightsFlag, _ := f.GetString("weights")
	zooName, _ := f.GetString("model")
	if weightsFlag != "" || zooName != "" {
		name := zooName
		if name == "" {
			name = defaultModelName(weightsFlag)
		}
		models = append(models, serveModel{name: name, weights: "?"})
	}
	if dir := cfg.GetString("serve.model_dir"); dir != "" {
		if repoDir != "" || len(models) > 0 {
			return usagef("give either --model-dir or models (--onnx, --weights, --model, --model-repository), not both")
		}
		file, err := resolveModelDir(dir)
		switch {
		case err != nil:
			return err
		case file != "":
			models = append(models, serveModel{onnx: file, name: defaultModelName(file)})
		case len(names) > 1:
			return usagef("--model-dir %q is a model repository: give at most one --name", dir)
		case len(names) == 1 && !repositoryHasModel(dir, names[0]):
			return usagef("--name %q: the model repository %s has no folder %q (KServe passes the InferenceService name: name the model's folder after it)", names[0], dir, names[0])
		default:
			repoDir, names = dir, nil
		}
	}
	var poll time.Duration
	if poll, err = configDuration(cmd, "serve.repository_poll", 0, math.MaxInt64); err != nil {
		return err
	}
	switch {
	case repoDir != "" && len(models) > 0:
		return usagef("give either --model-repository or models (--onnx, --weights, --model), not both")
	case repoDir == "" && poll > 0:
		return usagef("--repository-poll needs --model-repository")
	case repoDir != "":
		if fi, err := os.Stat(repoDir); err != nil || !fi.IsDir() {
			return usagef("--model-repository %q: not a folder", repoDir)
		}
	case len(models) == 0:
		return usagef("give a model: --onnx FILE (repeatable), --weights FILE or --model NAME, or --model-repository DIR or --model-dir DIR")
	}
	if len(names) > len(models) {
		return usagef("%d --name values for %d models", len(names), len(models))
	}
	seen := map[string]bool{}
	for i := range models {
		if i < len(names) {
			models[i].name = names[i]
		}
		if !serve.ValidName(models[i].name) {
			return usagef("model name %q: use 1-128 of A-Z a-z 0-9 . _ - (set it with --name)", models[i].name)
		}
		if seen[models[i].name] {
			return usagef("two models named %q: give distinct --name values", models[i].name)
		}
		seen[models[i].name] = true
		if models[i].onnx != "" {
			if _, err := os.Stat(models[i].onnx); err != nil {
				return fmt.Errorf("serve: %w", err)
			}
		}
	}
	ortOpts, err := ortOptions(cmd)
	if err != nil {
		return err
	}
	ortOpts.Logger = log
	opts.Runtime = ortOpts

	srv, err := serve.NewServer(scfg)
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", scfg.Addr)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	log.Info("listening", "url", "http://"+l.Addr().String(), "models", len(models))
	served := make(chan error, 2)
	go func() { served <- srv.Serve(l) }()
	if addr := cfg.GetString("serve.grpc_addr"); addr != "" {
		gl, err := net.Listen("tcp", addr)
		if err != nil {
			return errors.Join(fmt.Errorf("serve: --grpc-addr: %w", err), srv.Close())
		}
		log.Info("listening", "grpc", gl.Addr().String())
		go func() {
			if err := srv.ServeGRPC(gl); err != nil {
				served <- err
			}
		}()
	}

	ctx := cmd.Context()
	loadCtx, cancelLoad := context.WithCancel(ctx)
	defer cancelLoad()
	loaded := make(chan error, 1)
	if repoDir != "" {
		go func() {
			repo, err := serve.OpenRepository(repoDir, srv, serve.RepositoryOptions{Options: opts, Poll: poll, Logger: log})
			if repo == nil {
				loaded <- err
				return
			}
			defer repo.Close()
			if err != nil {
				log.Warn("some models of the repository failed to load; the others serve (see /v2/repository/index)", "error", err)
			}
			loaded <- nil
			<-loadCtx.Done()
		}()
	} else {
		go func() { loaded <- loadServeModels(loadCtx, cmd, srv, models, opts, log) }()
	}

	for {
		select {
		case err := <-loaded:
			loaded = nil
			if err != nil {
				return errors.Join(err, srv.Close())
			}
			log.Info("ready", "models", len(models))
		case err := <-served:
			return errors.Join(fmt.Errorf("serve: %w", err), srv.Close())
		case <-ctx.Done():
			cancelLoad()
			log.Info("signal received: draining", "grace", grace)
			sctx, cancel := context.WithTimeout(context.Background(), grace)
			err := srv.Shutdown(sctx)
			cancel()
			if err != nil {
				return fmt.Errorf("serve: requests still running after the %v grace period were cut off: %w", grace, err)
			}
			log.Info("stopped")
			return nil
		}
	}
}

// loadServeModels opens (or exports then opens) each model and publishes
// them all at once, so that readiness covers every model.
func loadServeModels(ctx context.Context, cmd *cobra.Command, srv *serve.Server, models []serveModel, opts serve.Options, log *slog.Logger) error {
	var opened []*serve.Classifier
	fail := func(err error) error {
		for _, c := range opened {
			err = errors.Join(err, c.Close())
		}
		return err
	}
	for _, m := range models {
		if err := ctx.Err(); err != nil {
			return fail(err)
		}
		path := m.onnx
		if m.weights != "" {
			p, cleanup, err := exportForServe(ctx, cmd, log)
			if err != nil {
				return fail(err)
			}
			defer cleanup()
			path = p
		}
		o := opts
		o.Name = m.name
		c, err := serve.Open(path, o)
		if err != nil {
			return fail(err)
		}
		opened = append(opened, c)
	}
	return srv.Add(opened...)
}

// exportForServe exports the --weights/--model checkpoint to a temporary
// ONNX file; cleanup removes it (ONNX Runtime has read it by then).
func exportForServe(ctx context.Context, cmd *cobra.Command, log *slog.Logger) (string, func(), error) {
	weights, err := weightsPath(cmd)
	if err != nil {
		return "", nil, err
	}
	resolution, _ := cmd.Flags().GetInt("resolution")
	labelsFile, _ := cmd.Flags().GetString("labels")
	// A run folder's weights keep what the run recorded: the labels and the
	// test resolution of its model.onnx (finetune), or the trained
	// resolution of its config.json (train), unless the flags say otherwise.
	runRes, runLabels := runFolderMeta(weights)
	if !cmd.Flags().Changed("resolution") && runRes > 0 {
		resolution = runRes
	}
	labels := runLabels
	if labelsFile != "" {
		labels = nil
	}
	if labelsFile != "" {
		b, err := os.ReadFile(labelsFile)
		if err != nil {
			return "", nil, fmt.Errorf("serve: labels: %w", err)
		}
		if labels, err = export.ParseLabels(string(b)); err != nil {
			return "", nil, err
		}
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

// serveLogger logs to w in text or JSON at the --log-level of the root command.
func serveLogger(cmd *cobra.Command, format string, w io.Writer) *slog.Logger {
	lvl := slog.LevelInfo
	_ = lvl.UnmarshalText([]byte(cfg.GetString("log.level"))) // flag, BITRUN_LOG_LEVEL or config; checked by checkGlobalConfig
	ho := &slog.HandlerOptions{Level: lvl}
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
			if m, err := export.ParseMeta(h.Metadata()); err == nil {
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
