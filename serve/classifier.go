package serve

import (
	"context"
	"errors"
	"fmt"
	"image"
	"log/slog"
	"math"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bitrun/bitrun/api"
	"github.com/bitrun/bitrun/data"
	"github.com/bitrun/bitrun/internal/digest"
	"github.com/bitrun/bitrun/internal/finite"
	"github.com/bitrun/bitrun/internal/regfile"
	"github.com/bitrun/bitrun/internal/setting"
	"github.com/bitrun/bitrun/internal/topk"
	"github.com/bitrun/bitrun/runtime"
)

// Runner runs a model on a batch. *runtime.Predictor is the Runner behind
// Open; any other implementation (a remote backend, a test double) can be
// wrapped with New.
type Runner interface {
	Info() runtime.Info
	Run(ctx context.Context, input []float32, shape []int64) (map[string]runtime.Output, error)
	Close() error
}

// Options configures a Classifier. The zero value is usable. As in every
// bitrun settings struct, a zero field takes the default documented beside
// it and, where a setting can be switched off, a negative value switches it
// off; limits that cannot be switched off take their default for a
// negative value too.
type Options struct {
	Name       string        // model name in URLs; "": file name without extension ("model" for New)
	Version    string        // model version in URLs (a positive integer, see ValidVersion); "": "1"
	MaxBatch   int           // largest batch sent to the model; 0: 16; negative: 16
	BatchDelay time.Duration // longest a queued image waits for others to join its batch; 0: 5ms; negative: no wait
	MaxQueue   int           // images waiting per model before ErrQueueFull; 0: 64*MaxBatch (1024); negative: the same
	// MaxQueueMemory caps MaxQueue by the bytes the waiting images'
	// preprocessed rows hold (4 × channels × resolution² each): 0: 256
	// MiB; negative: MaxQueue alone. It never caps below MaxBatch rows. A
	// 480 px model's 1024 queued rows would hold 2.8 GB.
	MaxQueueMemory int64
	Workers        int       // batches run concurrently; 0: auto (see Open), 1 for New; negative: the same as 0
	TopK           int       // predictions Classify returns; 0: 5; negative: 5
	MaxPixels      int       // pixel cap of ClassifyBytes; 0: data.DefaultMaxPixels; negative: the same
	Output         string    // output to score; "": "logits" if present, else the first output
	Labels         []string  // class names; nil: the model's bitrun.labels metadata
	Mean, Std      []float32 // normalisation (1 or 3 values each); nil: the model's bitrun.mean/std, else BiT's
	Runtime        runtime.Options
	Logger         *slog.Logger // nil: discard
}

// defaultQueueMemory is Options.MaxQueueMemory's default.
const defaultQueueMemory = 256 << 20

// queueRows is how many preprocessed rows of size floats the model's queue
// holds: MaxQueue, capped by MaxQueueMemory (resolved by withDefaults) but
// never under MaxBatch.
func (c *Classifier) queueRows(size int) int {
	rows := c.opts.MaxQueue
	if mem := c.opts.MaxQueueMemory; mem > 0 {
		rows = min(rows, max(c.opts.MaxBatch, int(mem/(4*int64(max(size, 1))))))
	}
	return rows
}

// DefaultOptions returns Options with every default filled in.
func DefaultOptions() Options {
	return Options{MaxBatch: 16, BatchDelay: 5 * time.Millisecond, MaxQueue: 1024, MaxQueueMemory: defaultQueueMemory, TopK: 5, MaxPixels: data.DefaultMaxPixels}
}

func (o Options) withDefaults() Options {
	d := DefaultOptions()
	if o.MaxBatch <= 0 {
		o.MaxBatch = d.MaxBatch
	}
	if o.BatchDelay == 0 {
		o.BatchDelay = d.BatchDelay
	}
	if o.BatchDelay < 0 {
		o.BatchDelay = 0
	}
	if o.MaxQueue <= 0 {
		o.MaxQueue = 64 * o.MaxBatch
	}
	o.MaxQueueMemory = setting.Resolve(o.MaxQueueMemory, d.MaxQueueMemory, -1)
	if o.Workers <= 0 {
		o.Workers = 1
	}
	if o.TopK <= 0 {
		o.TopK = d.TopK
	}
	if o.MaxPixels <= 0 {
		o.MaxPixels = d.MaxPixels
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Version == "" {
		o.Version = "1"
	}
	return o
}

// Prediction is one class of a top-k answer (the wire type of package api).
type Prediction = api.Prediction

// Classifier classifies images with one model, batching concurrent calls
// dynamically. It is safe for concurrent use. Close releases the model.
//
// Resource caveat: every queued image holds its preprocessed tensor
// (Channels*Resolution² float32s) until its batch runs; MaxQueue and
// MaxQueueMemory bound that.
type Classifier struct {
	name     string
	version  string
	path     string
	sha256   string
	fileID   string // the repository's identity of the model file (size, mtime)
	runner   Runner
	info     runtime.Info
	pre      prep
	output   string
	classes  int
	labels   []string
	outShape map[string][]int64 // output shapes with the batch dimension as -1
	opts     Options
	fixedN   int
	loadTime time.Duration
	b        *batcher
	metrics  atomic.Pointer[modelMetrics]
	stats    stats
	refs     refs
	ready    atomic.Bool
	closeOne sync.Once
	closeErr error
}

// Open loads the ONNX model at path with ONNX Runtime, checks its input
// (NCHW float, square, 1 or 3 channels) and metadata, and warms it with one
// batch of MaxBatch images before returning. Only local files are loaded.
//
// Workers 0 picks the CPU layout: with the CPU provider and
// Runtime.IntraThreads unset, min(2, cores) workers with cores/workers
// intra-op threads each, so one batch is preprocessed and answered while
// another runs; otherwise 1. With several workers and IntraThreads unset,
// the threads are split the same way (runtime.Options.ForConcurrentRuns);
// the README gives the measured effect.
func Open(path string, opts Options) (*Classifier, error) {
	opts.Workers, opts.Runtime = autoWorkers(opts.Workers, opts.Runtime, goruntime.NumCPU())
	start := time.Now()
	if strings.Contains(path, "://") {
		return nil, fmt.Errorf("serve: %s: only local model files are served", path)
	}
	sum, err := fileSHA256(path)
	if err != nil {
		return nil, err
	}
	if opts.Name == "" {
		opts.Name = ModelName(path)
	}
	p, err := runtime.Open(path, opts.Runtime)
	if err != nil {
		return nil, fmt.Errorf("serve: opening %s: %w", path, err)
	}
	c, err := newClassifier(p, opts, path, sum, start)
	if err != nil {
		return nil, errors.Join(err, p.Close())
	}
	return c, nil
}

// autoWorkers resolves Options.Workers 0 and splits the intra-op threads
// between workers (see Open).
func autoWorkers(workers int, ro runtime.Options, cores int) (int, runtime.Options) {
	if workers <= 0 {
		workers = 1
		if ro.OnCPU() && ro.IntraThreads == 0 {
			workers = min(2, max(cores, 1))
		}
	}
	return workers, ro.ForConcurrentRuns(workers, cores)
}

// New wraps a Runner (already loaded) as a Classifier and warms it with one
// batch. The Classifier owns r: Close closes it, and so does a failing New.
func New(r Runner, opts Options) (*Classifier, error) {
	if opts.Name == "" {
		opts.Name = "model"
	}
	c, err := newClassifier(r, opts, "", "", time.Now())
	if err != nil {
		return nil, errors.Join(err, r.Close())
	}
	return c, nil
}

// ModelName derives a model name from a file path: the base name without
// extension, as used when no name is given.
func ModelName(path string) string {
	base := filepath.Base(path)
	return strings.TrimSuffix(base, filepath.Ext(base))
}

// reservedName cannot name a model: GET /v2/models/stats is the KServe
// statistics of every model, and a model of that name would be shadowed.
const reservedName = "stats"

// ValidName reports whether name may be used as a model name in URLs:
// 1-128 characters from [A-Za-z0-9._-], not starting with a dot.
func ValidName(name string) bool {
	if name == "" || len(name) > 128 || name[0] == '.' {
		return false
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

func newClassifier(r Runner, opts Options, path, sum string, start time.Time) (*Classifier, error) {
	opts = opts.withDefaults()
	if !ValidName(opts.Name) {
		return nil, fmt.Errorf("%w: invalid model name %q (use 1-128 of A-Z a-z 0-9 . _ -)", ErrBadRequest, opts.Name)
	}
	if opts.Name == reservedName {
		return nil, fmt.Errorf("%w: model name %q is reserved: /v2/models/%s is the statistics of every model; name the model otherwise", ErrBadRequest, opts.Name, reservedName)
	}
	info := r.Info()
	if len(info.Outputs) == 0 {
		return nil, fmt.Errorf("serve: model has no outputs")
	}
	if !ValidVersion(opts.Version) {
		return nil, fmt.Errorf("%w: invalid model version %q (a positive integer without leading zeros)", ErrBadRequest, opts.Version)
	}
	pre, err := modelPreprocessing(info)
	if err != nil {
		return nil, err
	}
	if err := pre.override(opts.Mean, opts.Std); err != nil {
		return nil, err
	}
	c := &Classifier{name: opts.Name, version: opts.Version, path: path, sha256: sum, runner: r, info: info, pre: pre, opts: opts}
	if n := info.Shape[0]; n > 0 {
		c.fixedN = int(n)
		c.opts.MaxBatch = min(c.opts.MaxBatch, c.fixedN)
	}
	c.output = opts.Output
	if c.output == "" {
		c.output = info.Outputs[0]
		if slices.Contains(info.Outputs, "logits") {
			c.output = "logits"
		}
	} else if !slices.Contains(info.Outputs, c.output) {
		return nil, fmt.Errorf("serve: model has no output %q (outputs: %s)", c.output, strings.Join(info.Outputs, ", "))
	}
	rowShape := []int64{int64(pre.Channels), int64(pre.Resolution), int64(pre.Resolution)}

	// Warm-up: one full batch of zeros straight through the runner; it also
	// tells the class count. Its size is checked before it is allocated.
	warm := c.opts.MaxBatch
	if c.fixedN > 0 {
		warm = c.fixedN
	}
	if rowBytes := 4 * int64(pre.Size()); int64(warm) > maxBatchBytes/rowBytes {
		return nil, fmt.Errorf("serve: a batch of %d inputs of %v floats takes %d MiB, over the %d MiB limit; lower the max batch (the model's input shape is %v)",
			warm, rowShape, int64(warm)*rowBytes>>20, maxBatchBytes>>20, info.Shape)
	}
	outs, err := r.Run(context.Background(), make([]float32, warm*pre.Size()), append([]int64{int64(warm)}, rowShape...))
	if err != nil {
		return nil, fmt.Errorf("serve: warm-up batch: %w", err)
	}
	if err := checkBatchOutputs(outs, warm); err != nil {
		return nil, fmt.Errorf("serve: warm-up batch: %w", err)
	}
	o, ok := outs[c.output]
	if !ok {
		return nil, fmt.Errorf("serve: warm-up batch: output %q missing", c.output)
	}
	c.outShape = make(map[string][]int64, len(outs))
	for name, o := range outs {
		c.outShape[name] = append([]int64{-1}, o.Shape[1:]...)
	}
	c.classes = len(o.Data) / warm
	if c.classes < 1 {
		return nil, fmt.Errorf("serve: output %q has no classes", c.output)
	}
	if c.labels, err = modelLabels(info.Metadata, c.classes); err != nil {
		return nil, err
	}
	if opts.Labels != nil {
		if len(opts.Labels) != c.classes {
			return nil, fmt.Errorf("serve: %d labels given for %d classes", len(opts.Labels), c.classes)
		}
		c.labels = slices.Clone(opts.Labels)
	}
	c.b = newBatcher(r.Run, rowShape, c.opts.MaxBatch, c.fixedN, c.opts.BatchDelay, c.queueRows(pre.Size()), c.opts.Workers,
		func() batchObserver { return c })
	c.loadTime = time.Since(start)
	c.ready.Store(true)
	opts.Logger.Info("model loaded", "model", c.name, "version", c.version, "path", path, "classes", c.classes,
		"resolution", pre.Resolution, "max_batch", c.opts.MaxBatch, "workers", c.opts.Workers,
		"intra_op_threads", c.opts.Runtime.IntraThreads, "sessions", max(c.opts.Runtime.Sessions, 1), "load_s", c.loadTime.Seconds())
	return c, nil
}

func fileSHA256(path string) (string, error) {
	f, err := regfile.Open(path)
	if err != nil {
		return "", fmt.Errorf("serve: %w", err)
	}
	defer f.Close()
	sum, _, err := digest.SHA256(context.Background(), f, 0, nil)
	if err != nil {
		return "", fmt.Errorf("serve: reading %s: %w", path, err)
	}
	return sum, nil
}

// Name is the model's name.
func (c *Classifier) Name() string { return c.name }

// Version is the model's version (Options.Version).
func (c *Classifier) Version() string { return c.version }

// Classes is the number of classes the model scores.
func (c *Classifier) Classes() int { return c.classes }

// Labels are the class names from the model metadata (nil when absent).
func (c *Classifier) Labels() []string { return slices.Clone(c.labels) }

// Preprocessing describes how images become model input.
func (c *Classifier) Preprocessing() Preprocessing { return c.pre.Preprocessing }

// Ready reports whether the model is loaded, warmed and not closed.
func (c *Classifier) Ready() bool { return c.ready.Load() }

// LoadTime is how long loading and warming the model took.
func (c *Classifier) LoadTime() time.Duration { return c.loadTime }

// Classify returns the top Options.TopK classes of img.
func (c *Classifier) Classify(ctx context.Context, img image.Image) ([]Prediction, error) {
	return c.ClassifyTopK(ctx, img, c.opts.TopK)
}

// ClassifyTopK returns the top k classes of img (all of them when k exceeds
// the class count), best first; ties go to the lower index.
func (c *Classifier) ClassifyTopK(ctx context.Context, img image.Image, k int) ([]Prediction, error) {
	if k <= 0 {
		return nil, fmt.Errorf("%w: top_k must be positive, got %d", ErrBadRequest, k)
	}
	if img == nil {
		return nil, fmt.Errorf("%w: nil image", ErrBadRequest)
	}
	x := make([]float32, c.pre.Size())
	data.EvalTensor(img, c.pre.Resolution, c.pre.Channels, c.pre.norm, x)
	out, err := c.infer(ctx, x)
	if err != nil {
		return nil, err
	}
	return c.topK(out[c.output], k)
}

// ClassifyBytes decodes an encoded image (JPEG, PNG, GIF, BMP, WebP; pixel
// count capped by Options.MaxPixels before decoding) and classifies it.
func (c *Classifier) ClassifyBytes(ctx context.Context, b []byte, k int) ([]Prediction, error) {
	if k <= 0 {
		return nil, fmt.Errorf("%w: top_k must be positive, got %d", ErrBadRequest, k)
	}
	x, err := decodeRow(b, c.opts.MaxPixels, c.pre)
	if err != nil {
		return nil, err
	}
	out, err := c.infer(ctx, x)
	if err != nil {
		return nil, err
	}
	return c.topK(out[c.output], k)
}

// infer runs one preprocessed row through the batcher.
func (c *Classifier) infer(ctx context.Context, x []float32) (map[string][]float32, error) {
	if !c.ready.Load() {
		return nil, fmt.Errorf("%w: model %s is closed or not loaded", ErrNotReady, c.name)
	}
	out, err := c.b.submit(ctx, x)
	if err != nil {
		return nil, fmt.Errorf("serve: model %s: %w", c.name, err)
	}
	return out, nil
}

// topK turns one row of logits into the k best predictions: ranked by logit
// (ties to the lower index), scored with the softmax, exactly as
// `bitrun predict` ranks and scores.
func (c *Classifier) topK(logits []float32, k int) ([]Prediction, error) {
	if i := finite.Index(logits); i >= 0 {
		return nil, fmt.Errorf("%w: model %s produced %v for class %d", ErrNonFinite, c.name, logits[i], i)
	}
	scores := Softmax(logits)
	idx := topk.Indices(logits, k)
	preds := make([]Prediction, len(idx))
	for i, j := range idx {
		preds[i] = Prediction{Index: j, Score: scores[j], Label: c.label(j)}
	}
	return preds, nil
}

func (c *Classifier) label(i int) string {
	if i < len(c.labels) {
		return c.labels[i]
	}
	return fmt.Sprintf("class_%d", i)
}

// Softmax returns exp(x-max)/sum(exp(x-max)), computed in float64.
func Softmax(x []float32) []float64 {
	m := math.Inf(-1)
	for _, v := range x {
		m = max(m, float64(v))
	}
	out := make([]float64, len(x))
	var sum float64
	for i, v := range x {
		out[i] = math.Exp(float64(v) - m)
		sum += out[i]
	}
	for i := range out {
		out[i] /= sum
	}
	return out
}

// Close stops the batcher (queued images are still answered) and releases
// the model. Idempotent.
func (c *Classifier) Close() error {
	c.closeOne.Do(func() {
		c.ready.Store(false)
		c.b.close()
		c.closeErr = c.runner.Close()
	})
	return c.closeErr
}

// abort cancels the model's running batches and fails queued images, then
// closes the classifier (used when a shutdown grace period runs out).
func (c *Classifier) abort() error {
	c.ready.Store(false)
	c.b.abort()
	return c.Close()
}

// decodeRow decodes b straight into a new model input row with
// data.DecodeEvalTensor. data checks the pixel count from the header before
// decoding; over maxPixels is ErrTooManyPixels (413) here.
func decodeRow(b []byte, maxPixels int, pre prep) ([]float32, error) {
	if len(b) == 0 {
		return nil, ErrEmptyBody
	}
	x := make([]float32, pre.Size())
	if err := data.DecodeEvalTensor(b, maxPixels, pre.Resolution, pre.Channels, pre.norm, x); err != nil {
		var tp *data.TooManyPixelsError
		if errors.As(err, &tp) {
			return nil, fmt.Errorf("%w: image is %dx%d = %d pixels, over the max-pixels limit of %d",
				ErrTooManyPixels, tp.Width, tp.Height, tp.Pixels(), tp.Limit)
		}
		return nil, fmt.Errorf("serve: %w", err)
	}
	return x, nil
}
