package runtime

// API contract for running ONNX models through ONNX Runtime (filled in by the
// runtime work; bodies may move to other files of this package).

import (
	"context"
	"errors"
)

// ErrUnavailable is wrapped when the ONNX Runtime library cannot be loaded.
var ErrUnavailable = errors.New("runtime: ONNX Runtime unavailable")

// ErrBadInput is wrapped when an input tensor does not fit the model.
var ErrBadInput = errors.New("runtime: bad input")

// Options configures a Predictor. The zero value is usable: library path from
// BITRUN_ORT_LIB or the default install location, provider "cpu", ORT's
// default thread counts.
type Options struct {
	LibraryPath  string // path to libonnxruntime.so
	Provider     string // "cpu", "cuda" or "auto"
	IntraThreads int    // 0 = ORT default
	InterThreads int
}

// Info describes a model's input, outputs and bitrun metadata.
type Info struct {
	Input    string            // input name
	Shape    []int64           // input shape, -1 for dynamic dims
	Outputs  []string          // output names
	Metadata map[string]string // metadata_props (custom metadata map)
}

// Output is one named output tensor.
type Output struct {
	Shape []int64
	Data  []float32
}

// Predictor runs one ONNX model; safe for concurrent use.
type Predictor struct{}

// Open loads the model at path.
func Open(path string, opts Options) (*Predictor, error) { panic("TODO") }

// Info describes the model.
func (p *Predictor) Info() Info { panic("TODO") }

// Run feeds input (shape, e.g. [N,C,H,W]) and returns every output by name.
func (p *Predictor) Run(ctx context.Context, input []float32, shape []int64) (map[string]Output, error) {
	panic("TODO")
}

// Close releases the session; idempotent.
func (p *Predictor) Close() error { panic("TODO") }

// Version is the loaded ONNX Runtime version, or an error when it cannot be loaded.
func Version(opts Options) (string, error) { panic("TODO") }
