package quantize

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bitrun/bitrun/data"
	"github.com/bitrun/bitrun/eval"
	"github.com/bitrun/bitrun/export"
	"github.com/bitrun/bitrun/export/onnxpb"
	"github.com/bitrun/bitrun/internal/atomicfile"
	"github.com/bitrun/bitrun/internal/regfile"
	"github.com/bitrun/bitrun/runtime"
)

// Errors callers branch on.
var (
	// ErrNotBiT is wrapped when the input is not a float inference export
	// written by bitrun.
	ErrNotBiT = errors.New("quantize: not a bitrun BiT export")
	// ErrQuantized is wrapped when the input is already quantized.
	ErrQuantized = errors.New("quantize: model is already quantized")
	// ErrUnsupported is wrapped for BiT exports this package cannot
	// rewrite (external data).
	ErrUnsupported = errors.New("quantize: unsupported model")
	// ErrData is wrapped when a dataset does not fit the model (classes,
	// channels) or holds fewer calibration images than asked.
	ErrData = errors.New("quantize: dataset does not fit")
	// ErrNonFinite is wrapped when calibration meets a NaN or infinite
	// activation.
	ErrNonFinite = errors.New("quantize: non-finite activation")
	// ErrAccuracy is wrapped when the int8 model loses more top-1 accuracy
	// than Options.MaxDrop allows; the Result is returned with it.
	ErrAccuracy = errors.New("quantize: accuracy drop over the limit")
	// ErrOptions is wrapped for invalid options.
	ErrOptions = errors.New("quantize: invalid options")
)

// Metadata keys added to the quantized model (the export's bitrun.* keys
// are kept, so predict, eval and serve preprocess it the same way).
const (
	MetaQuantized   = "bitrun.quantized"           // "int8-qdq"
	MetaMethod      = "bitrun.quant.method"        // calibration method, e.g. "minmax", "percentile:99.99"
	MetaHead        = "bitrun.quant.head"          // "float" or "int8"
	MetaCalibration = "bitrun.quant.calibration"   // JSON CalibrationInfo
	MetaSourceModel = "bitrun.quant.source_sha256" // hex SHA-256 of the fp32 .onnx file
	MetaAccuracy    = "bitrun.quant.accuracy"      // JSON Accuracy; absent without a guard
	MetaFloatConvs  = "bitrun.quant.float_convs"   // convolutions kept float, decimal
)

// QuantizedValue is the value of MetaQuantized.
const QuantizedValue = "int8-qdq"

// Head says whether the classifier head is quantized.
type Head int

const (
	HeadFloat Head = iota // head Gemm kept in float (the default)
	HeadInt8              // head weight per-class int8, its input uint8
)

func (h Head) String() string {
	if h == HeadInt8 {
		return "int8"
	}
	return "float"
}

// ParseHead reads "float" or "int8".
func ParseHead(s string) (Head, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "float", "fp32", "":
		return HeadFloat, nil
	case "int8":
		return HeadInt8, nil
	}
	return 0, fmt.Errorf("%w: head %q (want float or int8)", ErrOptions, s)
}

// Defaults of the zero Options.
const (
	DefaultImages  = 512
	DefaultBatch   = 8
	DefaultMaxDrop = 1.0 // top-1 percentage points
	// DefaultMinChannels keeps the root convolution (3 input channels) float.
	DefaultMinChannels = 16
)

// Options configures Quantize. Zero fields take the defaults; for MaxDrop,
// negative turns the guard off (both models are still evaluated when Eval
// is set).
type Options struct {
	// Calibration supplies the calibration images (labels unused); its
	// class count must equal the model's. Required.
	Calibration data.Dataset
	// CalibrationName describes it in the metadata, e.g. "fmnist (train)".
	CalibrationName string
	// Images is the number of calibration images, drawn without replacement
	// in a seeded random order; 0 means DefaultImages. A dataset with fewer
	// is an error wrapping ErrData.
	Images int
	// Seed picks the calibration images.
	Seed uint64
	// Method is the calibration method (zero: min-max).
	Method Method
	// Head selects a float (zero) or int8 head.
	Head Head
	// MinChannels keeps convolutions with fewer input channels in float:
	// ONNX Runtime's integer kernel is slower than its float one on such
	// thin convolutions (R50x1's 7×7 root over 3 channels; figures in the
	// README). 0 means DefaultMinChannels; negative quantizes every
	// convolution.
	MinChannels int
	// Batch is the calibration and evaluation batch; 0 means DefaultBatch.
	Batch int
	// Eval is the held-out split of the accuracy guard; nil skips the
	// evaluation, which is only allowed with a negative MaxDrop.
	Eval data.Dataset
	// EvalName describes it in the metadata.
	EvalName string
	// Limit evaluates only the first Limit images of Eval; 0 means all.
	Limit int
	// MaxDrop is the largest top-1 drop (percentage points) written without
	// Force; 0 means DefaultMaxDrop, negative disables the guard.
	MaxDrop float64
	// Force writes the model even when the drop exceeds MaxDrop.
	Force bool
	// Runtime configures the ONNX Runtime sessions of calibration and
	// evaluation.
	Runtime runtime.Options
	// Logger receives a line per phase; nil discards.
	Logger *slog.Logger
	// Progress, when set, is called with the phase ("calibrate", "eval
	// fp32", "eval int8"), the images done and the total.
	Progress func(phase string, done, total int)
}

func (o Options) normalized() (Options, error) {
	if o.Calibration == nil {
		return o, fmt.Errorf("%w: no calibration dataset", ErrOptions)
	}
	if o.Images == 0 {
		o.Images = DefaultImages
	}
	if o.Batch == 0 {
		o.Batch = DefaultBatch
	}
	if o.MaxDrop == 0 {
		o.MaxDrop = DefaultMaxDrop
	}
	if o.MinChannels == 0 {
		o.MinChannels = DefaultMinChannels
	}
	switch {
	case o.Images < 0:
		return o, fmt.Errorf("%w: %d calibration images", ErrOptions, o.Images)
	case o.Batch < 0 || o.Batch > 1024:
		return o, fmt.Errorf("%w: batch %d out of range [1, 1024]", ErrOptions, o.Batch)
	case o.Limit < 0:
		return o, fmt.Errorf("%w: negative limit %d", ErrOptions, o.Limit)
	case o.Eval == nil && o.MaxDrop >= 0:
		return o, fmt.Errorf("%w: the accuracy guard needs an evaluation split (or a negative MaxDrop)", ErrOptions)
	case o.Method.Percentile != 0 && !(o.Method.Percentile >= 50 && o.Method.Percentile < 100):
		return o, fmt.Errorf("%w: percentile %v out of range [50, 100)", ErrOptions, o.Method.Percentile)
	case o.Head != HeadFloat && o.Head != HeadInt8:
		return o, fmt.Errorf("%w: head %d", ErrOptions, o.Head)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Progress == nil {
		o.Progress = func(string, int, int) {}
	}
	return o, nil
}

// CalibrationInfo is the MetaCalibration record.
type CalibrationInfo struct {
	Data   string `json:"data,omitempty"`
	Images int    `json:"images"`
	Seed   uint64 `json:"seed"`
	Method string `json:"method"`
	Size   int    `json:"size"` // preprocessing: image side
	// Mean and Std are the preprocessing normalisation on [0,1] pixels.
	Mean []float32 `json:"mean"`
	Std  []float32 `json:"std"`
}

// Accuracy is the accuracy guard's measurement (the MetaAccuracy record).
type Accuracy struct {
	Data     string  `json:"data,omitempty"`
	Images   int64   `json:"images"`
	FP32Top1 float64 `json:"fp32_top1"` // fraction in [0,1]
	Int8Top1 float64 `json:"int8_top1"`
	// Drop is FP32Top1 - Int8Top1 in percentage points.
	Drop    float64 `json:"drop_points"`
	MaxDrop float64 `json:"max_drop_points"` // the guard's limit; negative: off
	Forced  bool    `json:"forced,omitempty"`
	// Agreement is the share of images where both models pick the same class.
	Agreement float64 `json:"agreement"`
}

// Result describes a quantization.
type Result struct {
	Path        string // OUT; "" when nothing was written
	Bytes       int64  // size of OUT
	SourceBytes int64  // size of the fp32 model
	SourceSHA   string // hex SHA-256 of the fp32 model
	Convs       int    // convolutions quantized
	FloatConvs  int    // convolutions kept float (Options.MinChannels)
	Activations int    // activation tensors given Q/DQ
	Calibration CalibrationInfo
	// Accuracy is nil when no evaluation split was given.
	Accuracy *Accuracy
	// FP32 and Int8 are the evaluation reports (per-class accuracy, confusion).
	FP32, Int8 *eval.Report
	// PeakActivationBytes is the largest calibration batch's activations
	// returned by ONNX Runtime (the bulk of calibration's memory).
	PeakActivationBytes int64
	Duration            time.Duration
}

// Quantize reads the fp32 BiT export at in, calibrates its activations on
// opts.Calibration, writes the QDQ int8 model to out (atomically) after the
// accuracy guard passes, and describes what it did. Nothing is written to
// out when any step fails; a refused model returns the Result (with its
// Accuracy) and an error wrapping ErrAccuracy.
//
// Memory: the fp32 model and the int8 model (a quarter of its size), the
// statistics of each activation (2048 counters with percentile), and one
// calibration batch of activations as ONNX Runtime returns them: for R50x1
// at 128 px about 23 MB per image, so Batch bounds it.
func Quantize(ctx context.Context, in, out string, opts Options) (*Result, error) {
	start := time.Now()
	opts, err := opts.normalized()
	if err != nil {
		return nil, err
	}
	// Phase 1: read and check the fp32 model.
	if err := regfile.Check(in); err != nil {
		return nil, fmt.Errorf("quantize: %w", err)
	}
	raw, err := os.ReadFile(in)
	if err != nil {
		return nil, fmt.Errorf("quantize: %w", err)
	}
	sum := sha256.Sum256(raw)
	m, err := onnxpb.Unmarshal(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrNotBiT, in, err)
	}
	g, err := analyse(m)
	if err != nil {
		return nil, err
	}
	res := &Result{SourceBytes: int64(len(raw)), SourceSHA: hex.EncodeToString(sum[:])}
	res.FloatConvs = g.keepFloat(opts.MinChannels)
	res.Convs = len(g.convs)
	if err := checkDataset("calibration", opts.Calibration, g); err != nil {
		return nil, err
	}
	if opts.Eval != nil {
		if err := checkDataset("evaluation", opts.Eval, g); err != nil {
			return nil, err
		}
	}
	if n := opts.Calibration.Len(); n < opts.Images {
		return nil, fmt.Errorf("%w: the calibration set has %d images, %d asked", ErrData, n, opts.Images)
	}
	tmpDir, err := os.MkdirTemp("", "bitrun-quantize-")
	if err != nil {
		return nil, fmt.Errorf("quantize: %w", err)
	}
	defer os.RemoveAll(tmpDir)

	// Phase 2: calibrate.
	names := g.activations(opts.Head)
	stats, pre, peak, err := calibrate(ctx, g, names, tmpDir, opts)
	if err != nil {
		return nil, err
	}
	res.PeakActivationBytes = peak
	res.Activations = len(names)
	res.Calibration = CalibrationInfo{Data: opts.CalibrationName, Images: opts.Images, Seed: opts.Seed,
		Method: opts.Method.String(), Size: pre.Size, Mean: pre.Mean, Std: pre.Std}

	// Phase 3: rewrite to QDQ.
	act := make(map[string]qparams, len(stats))
	for _, s := range stats {
		lo, hi := s.bounds(opts.Method.Percentile)
		sc, z := uint8Params(lo, hi)
		act[s.name] = qparams{scale: sc, zero: z}
	}
	q := g.qdqModel(act, opts.Head)
	addMeta(q, map[string]string{
		MetaQuantized: QuantizedValue, MetaMethod: opts.Method.String(), MetaHead: opts.Head.String(),
		MetaCalibration: mustJSON(res.Calibration), MetaSourceModel: res.SourceSHA,
		MetaFloatConvs: strconv.Itoa(res.FloatConvs),
	})
	opts.Logger.Info("quantize: QDQ graph", "convs", len(g.convs), "float_convs", res.FloatConvs, "activations", len(names), "ops", describe(q))

	// Phase 4: the accuracy guard, on a temporary copy.
	if opts.Eval != nil {
		tmp := filepath.Join(tmpDir, "int8.onnx")
		if err := writeModel(tmp, q); err != nil {
			return nil, err
		}
		acc, fp, i8, err := guard(ctx, in, tmp, opts)
		if err != nil {
			return nil, err
		}
		res.Accuracy, res.FP32, res.Int8 = acc, fp, i8
		addMeta(q, map[string]string{MetaAccuracy: mustJSON(acc)})
		if opts.MaxDrop >= 0 && acc.Drop > opts.MaxDrop && !opts.Force {
			res.Duration = time.Since(start)
			return res, fmt.Errorf("%w: top-1 %.2f%% -> %.2f%% (drop %.2f points, limit %.2f); %s not written",
				ErrAccuracy, 100*acc.FP32Top1, 100*acc.Int8Top1, acc.Drop, opts.MaxDrop, out)
		}
	}

	// Phase 5: write OUT.
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("quantize: %w", err)
	}
	if err := writeModel(out, q); err != nil {
		return nil, err
	}
	if st, err := os.Stat(out); err == nil {
		res.Bytes = st.Size()
	}
	res.Path = out
	res.Duration = time.Since(start)
	opts.Logger.Info("quantize: wrote int8 model", "path", out, "bytes", res.Bytes, "duration", res.Duration)
	return res, nil
}

// checkDataset checks a dataset's classes against the model's.
func checkDataset(what string, ds data.Dataset, g *bitGraph) error {
	if n := len(ds.Classes()); n != g.meta.Classes {
		return fmt.Errorf("%w: the %s set has %d classes, the model %d", ErrData, what, n, g.meta.Classes)
	}
	if ds.Len() == 0 {
		return fmt.Errorf("%w: the %s set is empty", ErrData, what)
	}
	return nil
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // plain structs always marshal
	}
	return string(b)
}

// addMeta sets metadata entries, replacing existing keys.
func addMeta(m *onnxpb.Model, kv map[string]string) {
	for _, k := range []string{MetaQuantized, MetaMethod, MetaHead, MetaFloatConvs, MetaCalibration, MetaSourceModel, MetaAccuracy} {
		v, ok := kv[k]
		if !ok {
			continue
		}
		replaced := false
		for i := range m.MetadataProps {
			if m.MetadataProps[i].Key == k {
				m.MetadataProps[i].Value, replaced = v, true
			}
		}
		if !replaced {
			m.MetadataProps = append(m.MetadataProps, onnxpb.StringStringEntry{Key: k, Value: v})
		}
	}
}

// writeModel serializes m to path atomically.
func writeModel(path string, m *onnxpb.Model) error {
	b, err := m.Marshal()
	if err != nil {
		return fmt.Errorf("quantize: %w", err)
	}
	if err := atomicfile.Write(path, b); err != nil {
		return fmt.Errorf("quantize: %w", err)
	}
	return nil
}

// calibrate runs the calibration images through the float model with the
// activations as extra outputs and folds them into per-tensor statistics,
// one batch at a time. It returns the statistics in names' order, the
// preprocessing used and the largest batch's activation bytes.
func calibrate(ctx context.Context, g *bitGraph, names []string, tmpDir string, opts Options) ([]*rangeStats, eval.Preprocess, int64, error) {
	var pre eval.Preprocess
	path := filepath.Join(tmpDir, "calibration.onnx")
	if err := writeModel(path, g.calibrationModel(names)); err != nil {
		return nil, pre, 0, err
	}
	p, err := runtime.Open(path, opts.Runtime)
	if err != nil {
		return nil, pre, 0, fmt.Errorf("quantize: %w", err)
	}
	defer p.Close()
	info := p.Info()
	pre, err = eval.ResolvePreprocess(info.Shape, info.Metadata, eval.Overrides{})
	if err != nil {
		return nil, pre, 0, fmt.Errorf("quantize: %w", err)
	}
	if pre.Channels != g.channels {
		return nil, pre, 0, fmt.Errorf("%w: preprocessing gives %d channels, the model's first convolution reads %d", ErrData, pre.Channels, g.channels)
	}
	stats := make([]*rangeStats, len(names))
	for i, n := range names {
		stats[i] = newRangeStats(n, opts.Method)
	}
	order := data.Shuffled(opts.Calibration.Len(), opts.Seed)[:opts.Images]
	per := pre.Channels * pre.Size * pre.Size
	buf := make([]float32, opts.Batch*per)
	var peak int64
	workers := max(1, goruntime.GOMAXPROCS(0))
	for done := 0; done < len(order); {
		if err := ctx.Err(); err != nil {
			return nil, pre, 0, fmt.Errorf("quantize: %w", err)
		}
		idx := order[done:min(done+opts.Batch, len(order))]
		x := buf[:len(idx)*per]
		if err := data.Batch(opts.Calibration, idx, pre.Size, pre.Channels, pre.Norm, false, nil, x); err != nil {
			return nil, pre, 0, fmt.Errorf("quantize: calibration images: %w", err)
		}
		outs, err := p.Run(ctx, x, []int64{int64(len(idx)), int64(pre.Channels), int64(pre.Size), int64(pre.Size)})
		if err != nil {
			return nil, pre, 0, fmt.Errorf("quantize: calibration run: %w", err)
		}
		var bytes int64
		for _, o := range outs {
			bytes += 4 * int64(len(o.Data))
		}
		peak = max(peak, bytes)
		// Fold the tensors in parallel: one tensor per worker at a time.
		var (
			wg   sync.WaitGroup
			mu   sync.Mutex
			ferr error
			next = make(chan int)
		)
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range next {
					v := x
					if names[i] != export.InputImage {
						v = outs[names[i]].Data
					}
					if err := stats[i].add(v); err != nil {
						mu.Lock()
						ferr = cmpErr(ferr, err)
						mu.Unlock()
					}
				}
			}()
		}
		for i := range names {
			next <- i
		}
		close(next)
		wg.Wait()
		if ferr != nil {
			return nil, pre, 0, fmt.Errorf("%w (calibration images %d to %d)", ferr, done, done+len(idx)-1)
		}
		done += len(idx)
		opts.Progress("calibrate", done, len(order))
	}
	opts.Logger.Info("quantize: calibrated", "images", len(order), "tensors", len(names), "method", opts.Method.String(), "peak_batch_bytes", peak)
	return stats, pre, peak, nil
}

// cmpErr keeps the first error (deterministic enough for one message).
func cmpErr(have, err error) error {
	if have != nil {
		return have
	}
	return err
}

// guard evaluates the fp32 and int8 models on opts.Eval.
func guard(ctx context.Context, fp32, int8 string, opts Options) (*Accuracy, *eval.Report, *eval.Report, error) {
	run := func(path, phase string) (*eval.Report, []int, error) {
		p, err := runtime.Open(path, opts.Runtime)
		if err != nil {
			return nil, nil, fmt.Errorf("quantize: %w", err)
		}
		defer p.Close()
		c, err := eval.NewONNX(p, eval.Overrides{})
		if err != nil {
			return nil, nil, fmt.Errorf("quantize: %w", err)
		}
		rec := &recorder{Classifier: c}
		rep, err := eval.Run(ctx, rec, opts.Eval, eval.Options{Batch: max(opts.Batch, 16), Limit: opts.Limit,
			Progress: func(done, total int) { opts.Progress(phase, done, total) }})
		if err != nil {
			return nil, nil, fmt.Errorf("quantize: %s: %w", phase, err)
		}
		return rep, rec.top1, nil
	}
	fp, fpTop, err := run(fp32, "eval fp32")
	if err != nil {
		return nil, nil, nil, err
	}
	i8, i8Top, err := run(int8, "eval int8")
	if err != nil {
		return nil, nil, nil, err
	}
	agree := 0
	for i := range min(len(fpTop), len(i8Top)) {
		if fpTop[i] == i8Top[i] {
			agree++
		}
	}
	acc := &Accuracy{Data: opts.EvalName, Images: fp.Images, FP32Top1: float64(fp.Top1), Int8Top1: float64(i8.Top1),
		MaxDrop: opts.MaxDrop, Forced: opts.Force}
	acc.Drop = round4(100 * (acc.FP32Top1 - acc.Int8Top1))
	if n := len(fpTop); n > 0 {
		acc.Agreement = float64(agree) / float64(n)
	}
	opts.Logger.Info("quantize: accuracy", "fp32_top1", acc.FP32Top1, "int8_top1", acc.Int8Top1, "drop_points", acc.Drop, "agreement", acc.Agreement)
	return acc, fp, i8, nil
}

func round4(v float64) float64 {
	f, _ := strconv.ParseFloat(strconv.FormatFloat(v, 'f', 4, 64), 64)
	return f
}

// recorder remembers the top-1 class of every image a classifier scores.
type recorder struct {
	eval.Classifier
	top1 []int
}

func (r *recorder) Logits(ctx context.Context, x []float32, n int) ([]float32, int, error) {
	l, k, err := r.Classifier.Logits(ctx, x, n)
	if err == nil && k > 0 {
		for i := range n {
			best := 0
			for j := 1; j < k; j++ {
				if l[i*k+j] > l[i*k+best] {
					best = j
				}
			}
			r.top1 = append(r.top1, best)
		}
	}
	return l, k, err
}
