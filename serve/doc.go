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
// present, pooled buffers). Measured serving throughput against offline
// throughput, with the command that produced it, is in the README
// (scripts/serve-loadtest.sh).
//
// A Server exposes classifiers over HTTP (Handler for mounting in another
// mux, Serve/ListenAndServe for a hardened http.Server):
//
//	POST /v1/models/{name}[/versions/{v}]/predict   raw image body (image/*) or multipart "file" parts; ?top_k=
//	GET  /v1/models                  served models and their versions
//	GET  /v2                         KServe v2 server metadata and extensions
//	GET  /v2/health/live, /v2/health/ready, /healthz
//	GET  /v2/models/{name}[/versions/{v}]         metadata: tensors, labels, preprocessing, SHA-256
//	GET  /v2/models/{name}[/versions/{v}]/ready
//	POST /v2/models/{name}[/versions/{v}]/infer   KServe v2 tensors (see below)
//	GET  /v2/models[/{name}[/versions/{v}]]/stats Triton-style statistics per version
//	GET|POST /v2/repository/index, POST /v2/repository/models/{name}/load|unload
//	GET  /metrics                    Prometheus (per-model series labelled model and version)
//	GET  /                           a self-contained page to try a model
//	GET  /openapi.json               the OpenAPI 3 description of every route above
//
// The infer route speaks the Open Inference Protocol with its binary
// tensor data extension (Inference-Header-Content-Length; binary_data_size
// on inputs, binary_data on outputs, binary_data_output on the request) and
// its classification extension (an output's "classification": N returns
// BYTES "value:index:label" strings of the top N). Inputs are FP32
// [N, C, H, W] already preprocessed, or UINT8 image pixels of any size
// ([N, H, W, C] by default, [N, C, H, W] with "layout": "NCHW", or one
// [H, W, C] image) that get the model's preprocessing, as predict applies it
// after decoding. The wire bodies are package api's, shared with package
// client. A model without a version is served as version 1; several
// versions of a model come from a Repository, whose loads publish the new
// versions only once they are warmed, and close the old ones once their
// requests in flight are done (Server.Replace).
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
// The defaults are meant for untrusted clients on a loopback address. What
// one request can cost, and what all of them can cost together:
//
//   - Body: at most Config.MaxBody bytes (413 beyond), received within
//     Config.BodyTimeout (408 beyond). Bodies are read in full BEFORE an
//     in-flight slot is taken, so a slow client holds only the bytes it
//     sent, never a slot. Body bytes held in memory, with their parsing
//     copies (a multipart part, the KServe tensor data), are charged to one
//     budget of Config.MaxBodyMemory bytes for all requests together (1 GiB
//     by default; at most 2 × MaxInFlight × MaxBody and at least 2 ×
//     MaxBody); past it a request is a 503 before its body is buffered.
//     Parsing a KServe body costs about twice its size, hence the factor 2.
//   - gRPC: grpc-go buffers a message whole, at the size its prefix
//     declares (at most MaxBody), before any handler runs. So each call
//     reserves MaxBody of the same body budget until its message is in
//     (ResourceExhausted when there is no room: 64 calls receiving at once
//     with the defaults), the handler then charges what it parses as an
//     HTTP body, and a call ends within BodyTimeout + RequestTimeout even
//     when its client stalls. Idle connections close after IdleTimeout.
//     The health probes (ServerLive, ServerReady) get 4 slots of their own
//     past a full budget (at most 4 × MaxBody more), so a busy server
//     still answers them.
//   - Decoding: an image header is checked against Config.MaxPixels before
//     any pixel buffer is allocated, and a JPEG's scans, coefficient memory
//     and work are bounded from its markers (data.DecodeCostError); one
//     decode costs at most about 12 bytes per allowed pixel (480 MB at the
//     default 40M pixels, reached only by large progressive JPEGs; 4 bytes
//     per pixel otherwise) and well under a second of CPU. At most
//     Config.MaxDecodes images are decoded at once, and each decode is
//     charged 12 bytes per pixel its header declares against
//     Config.MaxDecodeMemory (512 MiB by default, whatever the number of
//     cores) before it starts, so decoding memory stays under that; a
//     request waiting for a decode slot or for room gives up when its
//     deadline (RequestTimeout) passes or its client goes away.
//   - Work: at most Config.MaxInFlight predict/infer requests are decoded
//     and run at once (503 beyond), each carries at most Config.MaxImages
//     images, and each model queues at most Options.MaxQueue preprocessed
//     images (model input rows: 4 × channels × resolution² bytes each) and
//     at most Options.MaxQueueMemory bytes of them (256 MiB by default).
//   - Answers: a KServe answer holds each model output at most once (an
//     output requested twice or unknown is a 400), so its size is bounded by
//     MaxImages × the model's outputs; it is encoded before the status is
//     written (NaN or Inf outputs are a 500 with a JSON error).
//   - UINT8 pixels: each image is checked against Config.MaxPixels before
//     anything is allocated for it and converted one at a time under a
//     decode slot (4 bytes per pixel on top of the body); binary tensor
//     lengths must cover the body exactly (api.AttachBinary), so no tensor
//     reads past it or shares bytes with another.
//   - Repository: model names are plain names (ValidName), and every
//     folder and file is resolved through its symlinks and must stay
//     inside the repository; a load that fails changes nothing.
//   - Every http.Server timeout is set.
//
// A bearer token (Config.AuthToken) protects every route except the health
// probes, which then carry no model names. Models are only loaded from local
// files given by the operator, never from a request. The package never
// prints; it logs through the *slog.Logger it is given.
package serve
