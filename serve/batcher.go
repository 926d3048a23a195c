package serve

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bitrun/bitrun/runtime"
)

// job is one image (one row of the batch) waiting for the model.
type job struct {
	ctx      context.Context
	x        []float32 // one preprocessed row
	enqueued time.Time
	res      chan jobResult // buffered: the worker never blocks on a gone caller
}

type jobResult struct {
	out map[string][]float32 // each output's row for this job
	err error
}

// batchObserver receives batching events (metrics); nil methods are not called.
type batchObserver interface {
	observeQueue(wait time.Duration)
	observeBatch(size int, t batchTimes, err error)
	observeDropped()
}

// batchTimes are the stages of one batch: copying the rows in, the model
// run, splitting the outputs into rows.
type batchTimes struct{ input, run, output time.Duration }

// runFunc runs one batch: input is n rows of rowSize values, shape its shape.
type runFunc func(ctx context.Context, input []float32, shape []int64) (map[string]runtime.Output, error)

// batcher groups concurrent jobs into batches: a worker takes the first job,
// then collects more until maxBatch jobs or until maxDelay after the first
// job was queued, and runs them in one call. Jobs whose context is done by
// then are dropped without reaching the model.
type batcher struct {
	run      runFunc
	rowShape []int64 // shape of one row, without the batch dimension
	rowSize  int
	maxBatch int
	fixedN   int // static batch size of the model (rows are zero-padded to it), or 0
	maxDelay time.Duration
	obs      func() batchObserver

	ctx     context.Context // parent of every run; cancelled by abort
	cancel  context.CancelFunc
	queue   chan *job
	forming atomic.Int64 // jobs taken off queue into batches that have not run yet
	mu      sync.RWMutex // guards closed against sends on a closed queue
	closed  bool
	workers sync.WaitGroup
}

func newBatcher(run runFunc, rowShape []int64, maxBatch, fixedN int, maxDelay time.Duration, maxQueue, workers int, obs func() batchObserver) *batcher {
	size := 1
	for _, d := range rowShape {
		size *= int(d)
	}
	b := &batcher{
		run: run, rowShape: rowShape, rowSize: size, maxBatch: maxBatch, fixedN: fixedN,
		maxDelay: maxDelay, obs: obs, queue: make(chan *job, maxQueue),
	}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	for range workers {
		b.workers.Add(1)
		go b.work()
	}
	return b
}

// submit queues one row and waits for its outputs. It fails fast with
// ErrQueueFull when the queue is full and returns ctx.Err() when ctx ends
// first (the row is then dropped before it reaches the model, if it has not
// already).
func (b *batcher) submit(ctx context.Context, x []float32) (map[string][]float32, error) {
	if len(x) != b.rowSize {
		return nil, fmt.Errorf("serve: internal error: row of %d values, want %d", len(x), b.rowSize)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	j := &job{ctx: ctx, x: x, enqueued: time.Now(), res: make(chan jobResult, 1)}
	b.mu.RLock()
	if b.closed {
		b.mu.RUnlock()
		return nil, ErrClosed
	}
	select {
	case b.queue <- j:
	default:
		b.mu.RUnlock()
		return nil, fmt.Errorf("%w: %d images waiting for this model", ErrQueueFull, cap(b.queue))
	}
	b.mu.RUnlock()
	select {
	case r := <-j.res:
		return r.out, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// queued is the number of jobs waiting: in the queue, or in a batch that
// is still collecting company.
func (b *batcher) queued() int { return len(b.queue) + int(b.forming.Load()) }

// close stops accepting jobs, lets the workers finish every queued job and
// waits for them. Idempotent.
func (b *batcher) close() {
	b.mu.Lock()
	if !b.closed {
		b.closed = true
		close(b.queue)
	}
	b.mu.Unlock()
	b.workers.Wait()
	b.cancel()
}

// abort cancels the batches running now and fails every queued job with
// ErrClosed instead of running it; then it closes the batcher.
func (b *batcher) abort() {
	b.cancel()
	b.close()
}

func (b *batcher) work() {
	defer b.workers.Done()
	batch := make([]*job, 0, b.maxBatch)
	var input []float32
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		first, ok := <-b.queue
		if !ok {
			return
		}
		batch = b.admit(batch[:0], first)
		open := true
		if wait := time.Until(first.enqueued.Add(b.maxDelay)); wait > 0 {
			timer.Reset(wait)
		collect:
			for len(batch) < b.maxBatch {
				select {
				case j, ok := <-b.queue:
					if !ok {
						open = false
						break collect
					}
					batch = b.admit(batch, j)
				case <-timer.C:
					break collect
				}
			}
			timer.Stop()
		}
		// Past the deadline (or none): take whatever is already queued.
	drain:
		for open && len(batch) < b.maxBatch {
			select {
			case j, ok := <-b.queue:
				if !ok {
					break drain
				}
				batch = b.admit(batch, j)
			default:
				break drain
			}
		}
		if len(batch) > 0 {
			input = b.runBatch(batch, input)
		}
		for i := range batch {
			batch[i] = nil
		}
	}
}

// admit appends j to batch unless its caller has gone (then j is answered
// with its context error and never reaches the model).
func (b *batcher) admit(batch []*job, j *job) []*job {
	if err := j.ctx.Err(); err != nil {
		j.res <- jobResult{err: err}
		if o := b.observer(); o != nil {
			o.observeDropped()
		}
		return batch
	}
	b.forming.Add(1)
	return append(batch, j)
}

func (b *batcher) observer() batchObserver {
	if b.obs == nil {
		return nil
	}
	return b.obs()
}

// runBatch runs the jobs as one batch and answers each; buf is reused
// between batches and returned.
func (b *batcher) runBatch(batch []*job, buf []float32) []float32 {
	b.forming.Add(-int64(len(batch)))
	// Callers that left while the batch was forming are dropped here too;
	// the others' wait (queue and batch forming) ends now.
	o := b.observer()
	live := batch[:0]
	for _, j := range batch {
		if err := j.ctx.Err(); err != nil {
			j.res <- jobResult{err: err}
			if o != nil {
				o.observeDropped()
			}
			continue
		}
		if o != nil {
			o.observeQueue(time.Since(j.enqueued))
		}
		live = append(live, j)
	}
	batch = live
	n := len(batch)
	if n == 0 {
		return buf
	}
	rows := n
	if b.fixedN > 0 {
		rows = b.fixedN
	}
	inStart := time.Now()
	if cap(buf) < rows*b.rowSize {
		buf = make([]float32, rows*b.rowSize)
	}
	buf = buf[:rows*b.rowSize]
	for i, j := range batch {
		copy(buf[i*b.rowSize:], j.x)
	}
	clear(buf[n*b.rowSize:])
	shape := append([]int64{int64(rows)}, b.rowShape...)
	if b.ctx.Err() != nil {
		for _, j := range batch {
			j.res <- jobResult{err: fmt.Errorf("%w: aborted", ErrClosed)}
		}
		return buf
	}
	// The run is cancelled when every caller of the batch has gone.
	ctx, cancel := context.WithCancel(b.ctx)
	var left sync.WaitGroup
	left.Add(n)
	stops := make([]func() bool, n)
	for i, j := range batch {
		stops[i] = context.AfterFunc(j.ctx, left.Done)
	}
	go func() { left.Wait(); cancel() }()
	start := time.Now()
	times := batchTimes{input: start.Sub(inStart)}
	outs, err := b.run(ctx, buf, shape)
	for _, stop := range stops {
		if stop() {
			left.Done() // the caller is still there: count it out now
		}
	}
	cancel()
	outStart := time.Now()
	times.run = outStart.Sub(start)
	if err == nil {
		err = checkBatchOutputs(outs, rows)
	}
	if err != nil {
		if o := b.observer(); o != nil {
			o.observeBatch(n, times, err)
		}
		for _, j := range batch {
			j.res <- jobResult{err: err}
		}
		return buf
	}
	res := make([]map[string][]float32, n)
	for i := range batch {
		row := make(map[string][]float32, len(outs))
		for name, o := range outs {
			size := len(o.Data) / rows
			// Copied: the runtime may reuse its output buffers.
			row[name] = append([]float32(nil), o.Data[i*size:(i+1)*size]...)
		}
		res[i] = row
	}
	times.output = time.Since(outStart)
	if o := b.observer(); o != nil {
		o.observeBatch(n, times, nil)
	}
	for i, j := range batch {
		j.res <- jobResult{out: res[i]}
	}
	return buf
}

// checkBatchOutputs checks that every output has one row per input row.
func checkBatchOutputs(outs map[string]runtime.Output, rows int) error {
	if len(outs) == 0 {
		return fmt.Errorf("serve: model returned no outputs")
	}
	for name, o := range outs {
		if len(o.Shape) == 0 || o.Shape[0] != int64(rows) || len(o.Data)%rows != 0 {
			return fmt.Errorf("serve: model output %q has shape %v for a batch of %d", name, o.Shape, rows)
		}
	}
	return nil
}
