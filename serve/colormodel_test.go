package serve_test

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/bitrun/bitrun/export/onnxpb"
	"github.com/bitrun/bitrun/runtime"
)

// writeColorModel writes a real ONNX model to dir and returns its path: 3
// classes ("red", "green", "blue") whose logits are the mean of each input
// channel (ReduceMean over H and W), plus a 1-value "brightness" output (the
// mean of the logits), input [N,3,res,res] with bitrun metadata.
func writeColorModel(dir string, res int) (string, error) {
	m := &onnxpb.Model{
		IRVersion:    8,
		OpsetImport:  []onnxpb.OpsetID{{Version: 17}},
		ProducerName: "bitrun serve tests",
		MetadataProps: []onnxpb.StringStringEntry{
			{Key: "bitrun.resolution", Value: fmt.Sprint(res)},
			{Key: "bitrun.mean", Value: "0.5,0.5,0.5"},
			{Key: "bitrun.std", Value: "0.5,0.5,0.5"},
			{Key: "bitrun.labels", Value: `["red","green","blue"]`},
		},
		Graph: &onnxpb.Graph{
			Name: "colors",
			Nodes: []*onnxpb.Node{
				{OpType: "ReduceMean", Inputs: []string{"image"}, Outputs: []string{"logits"},
					Attributes: []*onnxpb.Attribute{{Name: "axes", Type: onnxpb.AttrInts, Ints: []int64{2, 3}}, {Name: "keepdims", Type: onnxpb.AttrInt, I: 0}}},
				{OpType: "ReduceMean", Inputs: []string{"logits"}, Outputs: []string{"brightness"},
					Attributes: []*onnxpb.Attribute{{Name: "axes", Type: onnxpb.AttrInts, Ints: []int64{1}}, {Name: "keepdims", Type: onnxpb.AttrInt, I: 1}}},
			},
			Inputs: []*onnxpb.ValueInfo{{Name: "image", ElemType: onnxpb.Float, HasShape: true,
				Shape: []onnxpb.Dim{{Param: "N"}, {Value: 3}, {Value: int64(res)}, {Value: int64(res)}}}},
			Outputs: []*onnxpb.ValueInfo{
				{Name: "logits", ElemType: onnxpb.Float, HasShape: true, Shape: []onnxpb.Dim{{Param: "N"}, {Value: 3}}},
				{Name: "brightness", ElemType: onnxpb.Float, HasShape: true, Shape: []onnxpb.Dim{{Param: "N"}, {Value: 1}}},
			},
		},
	}
	b, err := m.Marshal()
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, fmt.Sprintf("colors-%d.onnx", res))
	return path, os.WriteFile(path, b, 0o644)
}

// colorRunner runs the colour model (writeColorModel) on ONNX Runtime behind
// a test gate: it records the batches it runs, can add a delay, and can hold
// runs (hold/release) so tests can fill queues and shut down mid-batch.
type colorRunner struct {
	*runtime.Predictor
	delay time.Duration

	mu      sync.Mutex
	batches []int // batch sizes run, warm-up included
	held    chan struct{}
	started chan int // receives the batch size when a held run starts
}

// newColorRunner opens the colour model at res on ONNX Runtime (the test
// fails when BITRUN_REQUIRE_ORT=1 and it is missing, else skips).
func newColorRunner(t testing.TB, res int) *colorRunner {
	t.Helper()
	requireORT(t)
	r, err := openColorRunner(t.TempDir(), res)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func openColorRunner(dir string, res int) (*colorRunner, error) {
	path, err := writeColorModel(dir, res)
	if err != nil {
		return nil, err
	}
	p, err := runtime.Open(path, runtime.Options{IntraThreads: 1})
	if err != nil {
		return nil, err
	}
	return &colorRunner{Predictor: p}, nil
}

// hold makes the following runs wait until release.
func (r *colorRunner) hold() {
	r.mu.Lock()
	r.held = make(chan struct{})
	r.started = make(chan int, 100)
	r.mu.Unlock()
}

func (r *colorRunner) release() {
	r.mu.Lock()
	if r.held != nil {
		close(r.held)
		r.held = nil
	}
	r.mu.Unlock()
}

func (r *colorRunner) Run(ctx context.Context, input []float32, shape []int64) (map[string]runtime.Output, error) {
	r.mu.Lock()
	if len(shape) > 0 {
		r.batches = append(r.batches, int(shape[0]))
	}
	held, started := r.held, r.started
	r.mu.Unlock()
	if held != nil {
		started <- int(shape[0])
		select {
		case <-held:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if r.delay > 0 {
		time.Sleep(r.delay)
	}
	return r.Predictor.Run(ctx, input, shape)
}

// batchSizes returns the batch sizes run after the warm-up batch.
func (r *colorRunner) batchSizes() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]int(nil), r.batches[1:]...)
}

// solid returns a w×h image of one colour.
func solid(w, h int, c color.Color) image.Image {
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			m.Set(x, y, c)
		}
	}
	return m
}

// pngBytes encodes img as PNG.
func pngBytes(img image.Image) []byte {
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		panic(err)
	}
	return b.Bytes()
}
