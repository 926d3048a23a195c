package runtime

// API for running ONNX models through ONNX Runtime. All native code lives in
// internal/ort; this package adds option handling, input checks, provider
// fallback and goroutine safety.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"github.com/bitrun/bitrun/internal/ort"
	"github.com/bitrun/bitrun/internal/regfile"
)

// ErrUnavailable is wrapped when the ONNX Runtime library cannot be loaded.
var ErrUnavailable = errors.New("runtime: ONNX Runtime unavailable")

// ErrBadInput is wrapped when an input tensor does not fit the model.
var ErrBadInput = errors.New("runtime: bad input")

// ErrUnsupported is wrapped when a model cannot be served by a Predictor
// (not exactly one float32 tensor input, or non-float32 outputs).
var ErrUnsupported = errors.New("runtime: unsupported model")

// ErrClosed is returned by Run after Close.
var ErrClosed = errors.New("runtime: predictor closed")

// Execution providers accepted in Options.Provider.
const (
	ProviderCPU  = "cpu"
	ProviderCUDA = "cuda"
	ProviderAuto = "auto"
)

// Options configures a Predictor. The zero value is usable: library path from
// BITRUN_ORT_LIB or the default install location, provider "cpu", ORT's
// default thread counts.
type Options struct {
	LibraryPath  string // path to libonnxruntime.so
	Provider     string // "cpu", "cuda" or "auto"; "": "cpu"
	IntraThreads int    // threads inside one operator; 0: ONNX Runtime's default; negative is an error
	InterThreads int    // threads running independent operators; 0: ONNX Runtime's default; negative is an error
	// CUDADevice is the GPU ordinal for "cuda" and "auto"; 0 is the first
	// GPU; negative is an error.
	CUDADevice int
	// Sessions is the number of ONNX Runtime sessions (0 or 1: one shared
	// session; negative or over 256 is an error). With more, each Run
	// borrows an idle session (waiting for one when all are busy); see
	// Predictor for when that pays.
	Sessions int
	// SessionConfig holds ONNX Runtime session configuration entries, e.g.
	// {"session.intra_op.allow_spinning": "0"} to stop idle intra-op threads
	// from spinning on a shared machine.
	SessionConfig map[string]string
	// OptimizedModelPath, when set, makes ONNX Runtime write the graph it
	// actually runs (after fusions such as QDQ -> QLinearConv) to this
	// .onnx file when the first session is created; "" writes nothing.
	OptimizedModelPath string
	// ProfilePrefix, when set, turns on ONNX Runtime's profiler for the
	// first session: a JSON trace of every node run goes to
	// PREFIX_<date>.json when the Predictor closes; "" is off.
	ProfilePrefix string
	// Logger receives the provider fallback reason and load details; nil
	// discards them.
	Logger *slog.Logger
}

// DefaultOptions returns the zero Options with the provider spelled out.
func DefaultOptions() Options { return Options{Provider: ProviderCPU} }

// provider is Provider normalised: trimmed, lower case, "cpu" when empty.
func (o Options) provider() string {
	if p := strings.ToLower(strings.TrimSpace(o.Provider)); p != "" {
		return p
	}
	return ProviderCPU
}

// OnCPU reports whether o asks for the CPU provider (the default).
func (o Options) OnCPU() bool { return o.provider() == ProviderCPU }

// ForConcurrentRuns returns o set up for n Runs at once on the CPU: when
// IntraThreads is 0 each Run gets cores/n intra-op threads (at least 1), and
// when that is more than one thread and Sessions is 0, each Run gets its own
// session so the thread pools do not contend (one-thread Runs execute on the
// calling goroutine's thread and can share one session and its weights).
// Other providers are returned unchanged. n <= 1 returns o.
//
// Several narrow Runs beat one wide Run when there is always work queued:
// ONNX Runtime's intra-op parallelism leaves cores idle between operators
// on small models (the README gives measured figures).
func (o Options) ForConcurrentRuns(n, cores int) Options {
	if n <= 1 {
		return o
	}
	if !o.OnCPU() {
		return o
	}
	if o.IntraThreads == 0 {
		o.IntraThreads = max(1, cores/n)
	}
	if o.IntraThreads > 1 && o.Sessions == 0 {
		o.Sessions = n
	}
	return o
}

// Info describes a model's input, outputs and bitrun metadata.
type Info struct {
	Input    string            // input name
	Shape    []int64           // input shape, -1 for dynamic dims
	Outputs  []string          // output names
	Metadata map[string]string // metadata_props (custom metadata map)
	// Provider is the execution provider the session runs on ("cpu" or "cuda").
	Provider string
	// Path is the model file.
	Path string
}

// Output is one named output tensor.
type Output struct {
	Shape []int64
	Data  []float32
}

// Predictor runs one ONNX model; safe for concurrent use.
//
// By default one ONNX Runtime session is shared by every goroutine: ORT's
// Run is thread-safe, the weights are held once, and a single caller (eval,
// bench, a dynamically batching server) gets every core for each Run.
// Many concurrent small Runs contend in the shared intra-op thread pool; for
// that load Options.Sessions > 1 with IntraThreads = cores/Sessions gives
// each caller its own session (weights held once per session);
// BenchmarkPredictorParallel compares the two.
//
// ONNX Runtime's idle intra-op threads spin-wait by default, which wastes
// the cores of a shared, busy host; SessionConfig
// {"session.intra_op.allow_spinning": "0"} turns the spinning off. The
// README gives measured figures for both.
type Predictor struct {
	mu       sync.RWMutex // guards sessions against Close during Run
	sessions []*ort.Session
	idle     chan *ort.Session // pool of idle sessions when len(sessions) > 1
	info     Info
}

// loadLibrary loads ONNX Runtime, wrapping failures with ErrUnavailable.
func loadLibrary(opts Options) (string, error) {
	v, err := ort.Load(opts.LibraryPath)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return v, nil
}

// Open loads the model at path.
func Open(path string, opts Options) (*Predictor, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	provider := opts.provider()
	switch provider {
	case ProviderCPU, ProviderCUDA, ProviderAuto:
	default:
		return nil, fmt.Errorf("runtime: unknown execution provider %q (want cpu, cuda or auto)", opts.Provider)
	}
	if opts.IntraThreads < 0 || opts.InterThreads < 0 {
		return nil, fmt.Errorf("runtime: thread counts must be >= 0, got intra %d inter %d", opts.IntraThreads, opts.InterThreads)
	}
	if opts.CUDADevice < 0 {
		return nil, fmt.Errorf("runtime: CUDA device %d: want a GPU ordinal >= 0", opts.CUDADevice)
	}
	if opts.Sessions < 0 || opts.Sessions > 256 {
		return nil, fmt.Errorf("runtime: sessions %d out of range [0, 256]", opts.Sessions)
	}
	version, err := loadLibrary(opts)
	if err != nil {
		return nil, err
	}
	// A FIFO or a device would be read by ONNX Runtime forever; a missing
	// file is left to ONNX Runtime's own error.
	if err := regfile.Check(path); errors.Is(err, regfile.ErrNotRegular) {
		return nil, fmt.Errorf("runtime: %w", err)
	}
	so := ort.SessionOptions{IntraThreads: opts.IntraThreads, InterThreads: opts.InterThreads, CUDADevice: opts.CUDADevice, Config: opts.SessionConfig}
	// "cuda" and "auto" ask for CUDA; "auto" falls back to the CPU.
	so.CUDA = provider != ProviderCPU
	first := so
	first.OptimizedModelPath, first.ProfilePrefix = opts.OptimizedModelPath, opts.ProfilePrefix
	sess, err := ort.NewSession(path, first)
	if err != nil && provider == ProviderAuto {
		log.Warn("runtime: CUDA execution provider unavailable, falling back to CPU", "model", path, "reason", err.Error())
		so.CUDA, first.CUDA = false, false
		sess, err = ort.NewSession(path, first)
	}
	if err != nil {
		return nil, fmt.Errorf("runtime: opening %s: %w", path, err)
	}
	used := ProviderCPU
	if so.CUDA {
		used = ProviderCUDA
	}
	p := &Predictor{sessions: []*ort.Session{sess}}
	for len(p.sessions) < opts.Sessions {
		more, err := ort.NewSession(path, so)
		if err != nil {
			return nil, errors.Join(fmt.Errorf("runtime: opening %s (session %d): %w", path, len(p.sessions)+1, err), p.Close())
		}
		p.sessions = append(p.sessions, more)
	}
	if len(p.sessions) > 1 {
		p.idle = make(chan *ort.Session, len(p.sessions))
		for _, s := range p.sessions {
			p.idle <- s
		}
	}
	ins, outs := sess.Inputs(), sess.Outputs()
	if len(ins) != 1 || !ins[0].IsTensor || !ins[0].Float {
		desc := make([]string, len(ins))
		for i, in := range ins {
			desc[i] = fmt.Sprintf("%s %s%v", in.Name, in.ElemType, in.Shape)
		}
		return nil, errors.Join(fmt.Errorf("%w: %s: want one float32 tensor input, model has [%s]", ErrUnsupported, path, strings.Join(desc, ", ")), p.Close())
	}
	for _, o := range outs {
		if !o.IsTensor || !o.Float {
			return nil, errors.Join(fmt.Errorf("%w: %s: output %q is %s, want float32 tensors", ErrUnsupported, path, o.Name, o.ElemType), p.Close())
		}
	}
	p.info = Info{Input: ins[0].Name, Shape: ins[0].Shape, Metadata: sess.Metadata(), Provider: used, Path: path}
	for _, o := range outs {
		p.info.Outputs = append(p.info.Outputs, o.Name)
	}
	log.Debug("runtime: model opened", "model", path, "provider", used, "ort", version,
		"input", p.info.Input, "shape", p.info.Shape, "outputs", p.info.Outputs)
	return p, nil
}

// Info describes the model. The returned value is a copy.
func (p *Predictor) Info() Info {
	i := p.info
	i.Shape = append([]int64(nil), p.info.Shape...)
	i.Outputs = append([]string(nil), p.info.Outputs...)
	i.Metadata = make(map[string]string, len(p.info.Metadata))
	for k, v := range p.info.Metadata {
		i.Metadata[k] = v
	}
	return i
}

// CheckShape reports (wrapping ErrBadInput) whether shape fits the model's
// input: same rank, every dim positive, fixed dims equal.
func (p *Predictor) CheckShape(shape []int64) error {
	want := p.info.Shape
	if len(shape) != len(want) {
		return fmt.Errorf("%w: input %q has rank %d, model wants rank %d %v", ErrBadInput, p.info.Input, len(shape), len(want), want)
	}
	for i, d := range shape {
		if d <= 0 {
			return fmt.Errorf("%w: input %q dim %d is %d, must be positive", ErrBadInput, p.info.Input, i, d)
		}
		if want[i] > 0 && d != want[i] {
			what := fmt.Sprintf("dim %d", i)
			if len(want) == 4 {
				what = [4]string{"batch", "channels", "height", "width"}[i]
			}
			return fmt.Errorf("%w: input %q %s is %d, model wants %d (shape %v)", ErrBadInput, p.info.Input, what, d, want[i], want)
		}
	}
	return nil
}

// Run feeds input (shape, e.g. [N,C,H,W]) and returns every output by name.
// The input slice is read, not kept. Cancelling ctx terminates the run.
func (p *Predictor) Run(ctx context.Context, input []float32, shape []int64) (map[string]Output, error) {
	if err := p.CheckShape(shape); err != nil {
		return nil, err
	}
	n := int64(1)
	for _, d := range shape {
		if n > (1<<62)/d {
			return nil, fmt.Errorf("%w: input shape %v is too large", ErrBadInput, shape)
		}
		n *= d
	}
	if int64(len(input)) != n {
		return nil, fmt.Errorf("%w: input has %d values, shape %v needs %d", ErrBadInput, len(input), shape, n)
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.sessions == nil {
		return nil, ErrClosed
	}
	sess := p.sessions[0]
	if p.idle != nil {
		select {
		case sess = <-p.idle:
			defer func() { p.idle <- sess }()
		case <-ctx.Done():
			return nil, fmt.Errorf("runtime: run: %w", ctx.Err())
		}
	}
	outs, err := sess.Run(ctx, input, shape)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("runtime: run: %w", ctx.Err())
		}
		return nil, fmt.Errorf("runtime: run: %w", err)
	}
	res := make(map[string]Output, len(outs))
	for _, o := range outs {
		res[o.Name] = Output{Shape: o.Shape, Data: o.Data}
	}
	return res, nil
}

// Close releases the session; idempotent.
func (p *Predictor) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var errs []error
	for _, s := range p.sessions {
		if err := s.Close(); err != nil {
			errs = append(errs, fmt.Errorf("runtime: %w", err))
		}
	}
	p.sessions = nil
	return errors.Join(errs...)
}

// Version is the loaded ONNX Runtime version, or an error when it cannot be loaded.
func Version(opts Options) (string, error) { return loadLibrary(opts) }
