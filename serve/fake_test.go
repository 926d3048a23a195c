package serve_test

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"sync"
	"time"

	"github.com/bitrun/bitrun/runtime"
)

// colorRunner is a stand-in model for tests and examples: 3 classes ("red",
// "green", "blue") whose logits are the mean of each input channel, plus a
// 1-value "brightness" output. It records the batches it runs and can be
// held (hold/release) to test queueing and shutdown.
type colorRunner struct {
	res   int
	delay time.Duration

	mu      sync.Mutex
	batches []int // batch sizes run, warm-up included
	held    chan struct{}
	started chan int // receives the batch size when a held run starts
	closed  bool
}

func newColorRunner(res int) *colorRunner { return &colorRunner{res: res} }

func (r *colorRunner) Info() runtime.Info {
	return runtime.Info{
		Input: "image", Shape: []int64{-1, 3, -1, -1}, Outputs: []string{"logits", "brightness"},
		Metadata: map[string]string{
			"bitrun.resolution": fmt.Sprint(r.res),
			"bitrun.mean":       "0.5,0.5,0.5",
			"bitrun.std":        "0.5,0.5,0.5",
			"bitrun.labels":     `["red","green","blue"]`,
		},
	}
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
	if len(shape) != 4 || shape[1] != 3 || shape[2] != int64(r.res) || shape[3] != int64(r.res) {
		return nil, fmt.Errorf("%w: shape %v", runtime.ErrBadInput, shape)
	}
	n := int(shape[0])
	if len(input) != n*3*r.res*r.res {
		return nil, fmt.Errorf("%w: %d values for %v", runtime.ErrBadInput, len(input), shape)
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, runtime.ErrClosed
	}
	r.batches = append(r.batches, n)
	held, started := r.held, r.started
	r.mu.Unlock()
	if held != nil {
		started <- n
		select {
		case <-held:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if r.delay > 0 {
		time.Sleep(r.delay)
	}
	plane := r.res * r.res
	logits := make([]float32, n*3)
	bright := make([]float32, n)
	for i := range n {
		for c := range 3 {
			var sum float64
			for _, v := range input[(i*3+c)*plane : (i*3+c+1)*plane] {
				sum += float64(v)
			}
			logits[i*3+c] = float32(sum / float64(plane))
			bright[i] += logits[i*3+c] / 3
		}
	}
	return map[string]runtime.Output{
		"logits":     {Shape: []int64{int64(n), 3}, Data: logits},
		"brightness": {Shape: []int64{int64(n), 1}, Data: bright},
	}, nil
}

func (r *colorRunner) Close() error {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	return nil
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
