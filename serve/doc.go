// Package serve serves BiT (or any NCHW float) ONNX image classifiers over
// HTTP and embeds them in Go programs.
//
// A Classifier wraps one model (Open loads an ONNX file with ONNX Runtime;
// New wraps any Runner) with the model's own preprocessing (read from its
// bitrun.* metadata: resolution, mean, std, labels) and a dynamic batcher:
// concurrent Classify calls are grouped into batches of up to MaxBatch images,
// waiting at most BatchDelay for company, through a bounded queue
// (ErrQueueFull when full). A caller whose context ends before its batch runs
// never reaches the model. Classifier is safe for concurrent use and can be
// used on its own by a Go program.
//
// Throughput: Options.Workers batches run at once (by default, on the CPU,
// min(2, cores) workers each with cores/workers ONNX Runtime threads), and
// uploads are decoded straight into model input rows (libjpeg-turbo when
// present, pooled buffers). Measured on 2 cores with the load generator on
// the same cores (scripts/serve-loadtest.sh, small BiT at 64×64, 32 clients,
// 2000 requests, medians of 3 rounds): a 150×103 JPEG photo 778 images/s and
// a 600×412 one 538, against 860 images/s offline from `bitrun bench
// --batch 16` (91% and 63%) and 1333 with two 1-thread streams.
//
// A Server exposes classifiers over HTTP (Handler for mounting in another
// mux, Serve/ListenAndServe for a hardened http.Server):
//
//	POST /v1/models/{name}/predict   raw image body (image/*) or multipart "file" parts; ?top_k=
//	GET  /v1/models                  served models
//	GET  /v2                         KServe v2 server metadata
//	GET  /v2/health/live, /v2/health/ready, /healthz
//	GET  /v2/models/{name}           metadata: tensors, labels, preprocessing, SHA-256
//	GET  /v2/models/{name}/ready
//	POST /v2/models/{name}/infer     KServe v2 JSON tensors (FP32, [N,C,H,W])
//	GET  /metrics                    Prometheus
//
// Every error is a JSON body {"error": "..."}; the status code comes from one
// function mapping the package's sentinel errors (ErrQueueFull is 503 with
// Retry-After, ErrBodyTooLarge 413, an exceeded inference deadline 504, ...).
// Readiness is reported only once every model is loaded and warmed with one
// batch, and turns 503 as soon as Shutdown starts; Shutdown then lets
// requests in flight finish before closing the models.
//
// # Resource and security caveats
//
// The defaults are meant for untrusted clients on a loopback address: bodies
// are capped (Config.MaxBody), image headers are checked against
// Config.MaxPixels before any pixel buffer is allocated (a decoded image costs
// about 4 bytes per pixel, so the default 40M pixels allows ~160 MiB per image
// being decoded), at most Config.MaxDecodes images are decoded at once and
// Config.MaxInFlight predict/infer requests are handled at once (so bodies
// held in memory stay under MaxInFlight × MaxBody; 503 beyond), a
// request carries at most Config.MaxImages images, each model queues at most
// Options.MaxQueue preprocessed images, and every http.Server timeout is set.
// A bearer token (Config.AuthToken) protects every route except the health
// probes. Models are only loaded from local files given by the operator,
// never from a request. The package never prints; it logs through the
// *slog.Logger it is given.
package serve
