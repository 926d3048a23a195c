package api

// Error is the body of every non-2xx answer.
type Error struct {
	Error string `json:"error"`
}

// Prediction is one class of a top-k answer.
type Prediction struct {
	Label string  `json:"label"`
	Index int     `json:"index"`
	Score float64 `json:"score"` // softmax probability of the logits
}

// PredictResult is the answer for one image of a predict request; File is
// the multipart file name, empty for a raw-body upload.
type PredictResult struct {
	File        string       `json:"file,omitempty"`
	Predictions []Prediction `json:"predictions"`
}

// PredictResponse is the body of POST /v1/models/{name}/predict.
// Predictions are those of the first (usually only) image; Results has one
// entry per image, in request order.
type PredictResponse struct {
	Model       string          `json:"model"`
	Version     string          `json:"version,omitempty"`
	ID          string          `json:"id"`
	Predictions []Prediction    `json:"predictions"`
	Results     []PredictResult `json:"results"`
}

// ModelEntry is one served model in ModelList.
type ModelEntry struct {
	Name     string   `json:"name"`
	Ready    bool     `json:"ready"`
	Versions []string `json:"versions,omitempty"` // served versions, oldest first
}

// ModelList is the body of GET /v1/models.
type ModelList struct {
	Models []ModelEntry `json:"models"`
}

// Healthz is the body of GET /healthz; Models is left out when the server
// has a bearer token and the caller did not send it.
type Healthz struct {
	Status string   `json:"status"`
	Models []string `json:"models,omitempty"`
}

// Live is the body of GET /v2/health/live.
type Live struct {
	Live bool `json:"live"`
}

// Ready is the body of GET /v2/health/ready.
type Ready struct {
	Ready bool `json:"ready"`
}

// ModelReady is the body of GET /v2/models/{name}[/versions/{version}]/ready.
type ModelReady struct {
	Name    string `json:"name"`
	Version string `json:"version,omitempty"`
	Ready   bool   `json:"ready"`
}

// Extensions of the v2 protocol the server implements, listed by GET /v2.
const (
	ExtensionBinaryData     = "binary_tensor_data"
	ExtensionClassification = "classification"
	ExtensionStatistics     = "statistics"
	ExtensionRepository     = "model_repository"
)

// ServerMetadata is the body of GET /v2.
type ServerMetadata struct {
	Name       string   `json:"name"`
	Version    string   `json:"version"`
	Extensions []string `json:"extensions"`
}

// TensorMetadata describes one model input or output.
type TensorMetadata struct {
	Name     string  `json:"name"`
	Datatype string  `json:"datatype"`
	Shape    []int64 `json:"shape"`
}

// Preprocessing is how the server turns an image into a model input row: a
// square bilinear resize to Resolution, then (p/255 - Mean[c]) / Std[c] per
// channel, written CHW (layout NCHW for the batch).
type Preprocessing struct {
	Resolution int       `json:"resolution"`
	Channels   int       `json:"channels"`
	Mean       []float32 `json:"mean"`
	Std        []float32 `json:"std"`
	Layout     string    `json:"layout"`
	Resize     string    `json:"resize"`
}

// Size is the number of float32 values of one preprocessed image.
func (p Preprocessing) Size() int { return p.Channels * p.Resolution * p.Resolution }

// ModelMetadata is the body of GET /v2/models/{name}[/versions/{version}]:
// the v2 fields plus labels, preprocessing, the model file's SHA-256 and
// batching limits. Versions lists every served version; Version is the one
// described (the latest when the URL names none).
type ModelMetadata struct {
	Name          string           `json:"name"`
	Version       string           `json:"version,omitempty"`
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

// StatDuration is a count and the total time of one stage, as Triton
// reports statistics.
type StatDuration struct {
	Count uint64 `json:"count"`
	Ns    uint64 `json:"ns"`
}

// InferStatistics are the per-stage figures of one model version: Success
// and Fail count requests and their whole duration; Queue, ComputeInput,
// ComputeInfer and ComputeOutput count images (queue) and batches (the
// compute stages).
type InferStatistics struct {
	Success       StatDuration `json:"success"`
	Fail          StatDuration `json:"fail"`
	Queue         StatDuration `json:"queue"`
	ComputeInput  StatDuration `json:"compute_input"`
	ComputeInfer  StatDuration `json:"compute_infer"`
	ComputeOutput StatDuration `json:"compute_output"`
}

// ModelStatistics are the statistics of one model version.
type ModelStatistics struct {
	Name           string          `json:"name"`
	Version        string          `json:"version"`
	LastInference  int64           `json:"last_inference"`  // Unix milliseconds of the last batch, 0 before any
	InferenceCount uint64          `json:"inference_count"` // images inferred
	ExecutionCount uint64          `json:"execution_count"` // batches run
	InferenceStats InferStatistics `json:"inference_stats"`
}

// Statistics is the body of GET /v2/models[/{name}[/versions/{version}]]/stats.
type Statistics struct {
	ModelStats []ModelStatistics `json:"model_stats"`
}

// Model states in the repository index.
const (
	StateReady       = "READY"
	StateUnavailable = "UNAVAILABLE"
	StateLoading     = "LOADING"
	StateUnloading   = "UNLOADING"
)

// RepositoryIndexRequest is the (optional) body of POST /v2/repository/index.
type RepositoryIndexRequest struct {
	Ready bool `json:"ready,omitempty"` // only models ready to serve
}

// RepositoryModel is one entry of the repository index: one version of a
// model, or a model with no version loaded (Version empty). Reason says why
// a model is UNAVAILABLE (its last load failed, or it was unloaded).
type RepositoryModel struct {
	Name    string `json:"name"`
	Version string `json:"version,omitempty"`
	State   string `json:"state"`
	Reason  string `json:"reason,omitempty"`
}

// RepositoryLoad is the answer of POST /v2/repository/models/{name}/load
// and .../unload: the model's versions now served.
type RepositoryLoad struct {
	Name     string   `json:"name"`
	Versions []string `json:"versions"`
	State    string   `json:"state"`
}
