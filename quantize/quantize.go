package quantize

import (
	"cmp"
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
	"slices"
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

// Guard is what the accuracy guard measures.
type Guard int

const (
	// GuardAuto (the zero value) is GuardLabels when the evaluation set has
	// the model's class count, else GuardAgreement.
	GuardAuto Guard = iota
	// GuardLabels measures the top-1 accuracy of both models against the
	// dataset's labels; the calibration and evaluation sets must have the
	// model's class count. MaxDrop limits the fall in top-1.
	GuardLabels
	// GuardAgreement measures how often the int8 model's top-1 is the fp32
	// model's (and the fp32 top-1 is among the int8 top 5), labels unused:
	// for models whose classes are not the dataset's, such as the zoo's
	// 1000- and 21843-class upstream checkpoints. MaxDrop limits the
	// disagreement, 100 × (1 - agreement) points.
	GuardAgreement
)

func (g Guard) String() string {
	switch g {
	case GuardLabels:
		return "labels"
	case GuardAgreement:
		return "agreement"
	}
	return "auto"
}

// ParseGuard reads "auto", "labels" or "agreement".
func ParseGuard(s string) (Guard, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "auto", "":
		return GuardAuto, nil
	case "labels", "top1", "top-1":
		return GuardLabels, nil
	case "agreement":
		return GuardAgreement, nil
	}
	return 0, fmt.Errorf("%w: guard %q (want auto, labels or agreement)", ErrOptions, s)
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
	// Calibration supplies the calibration images (labels unused); under
	// GuardLabels its class count must equal the model's. Required.
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
	// Guard is what the guard measures on Eval (zero: GuardAuto).
	Guard Guard
	// EvalName describes it in the metadata.
	EvalName string
	// Limit evaluates only the first Limit images of Eval; 0 means all.
	Limit int
	// MaxDrop is the largest top-1 drop (GuardLabels) or disagreement
	// (GuardAgreement), in percentage points, written without Force; 0
	// means DefaultMaxDrop, negative disables the guard.
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
	case o.Method.Percentile != 0 && o.Method.Entropy:
		return o, fmt.Errorf("%w: the percentile and entropy methods are exclusive", ErrOptions)
	case o.Head != HeadFloat && o.Head != HeadInt8:
		return o, fmt.Errorf("%w: head %d", ErrOptions, o.Head)
	case o.Guard < GuardAuto || o.Guard > GuardAgreement:
		return o, fmt.Errorf("%w: guard %d", ErrOptions, o.Guard)
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
	Data   string `json:"data,omitempty"`
	Images int64  `json:"images"`
	// Guard is what was measured: "labels" or "agreement" (Guard.String).
	Guard string `json:"guard"`
	// FP32Top1 and Int8Top1 are the top-1 accuracies against the labels,
	// fractions in [0,1]; the agreement guard leaves them out (zero).
	FP32Top1 float64 `json:"fp32_top1,omitempty"`
	Int8Top1 float64 `json:"int8_top1,omitempty"`
	// Drop is what MaxDrop limits, in percentage points: FP32Top1 -
	// Int8Top1 under the labels guard, 100 × (1 - Agreement) under the
	// agreement guard.
	Drop    float64 `json:"drop_points"`
	MaxDrop float64 `json:"max_drop_points"` // the guard's limit; negative: off
	Forced  bool    `json:"forced,omitempty"`
	// Agreement is the share of images where both models pick the same class.
	Agreement float64 `json:"agreement"`
	// Top5Agreement is the share of images whose fp32 top-1 is among the
	// int8 model's five best classes.
	Top5Agreement float64 `json:"top5_agreement"`
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
// statistics of each activation (2048 counters with percentile or entropy), and one
// calibration batch of activations as ONNX Runtime returns them: for R50x1
// at 128 px about 23 MB per image, so Batch bounds it.
func Quantize(ctx context.Context, in, out string, opts Options) (*Result, error) {
	start := time.Now()
	opts, err := opts.normalized()
	if err != nil {
		return nil, err
	}
	// Phase 1: read and check the fp32 model.
	raw, err := regfile.ReadFile(in)
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
	mode := opts.Guard
	if mode == GuardAuto && opts.Eval != nil {
		mode = GuardLabels
		if len(opts.Eval.Classes()) != g.meta.Classes {
			mode = GuardAgreement
			opts.Logger.Info("quantize: the evaluation set's classes are not the model's: the guard measures fp32/int8 agreement",
				"dataset_classes", len(opts.Eval.Classes()), "model_classes", g.meta.Classes)
		}
	}
	if err := checkDataset("calibration", opts.Calibration, g, mode == GuardLabels); err != nil {
		return nil, err
	}
	if opts.Eval != nil {
		if err := checkDataset("evaluation", opts.Eval, g, mode == GuardLabels); err != nil {
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
		lo, hi := s.bounds(opts.Method)
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
		acc, fp, i8, err := guard(ctx, in, tmp, mode, opts)
		if err != nil {
			return nil, err
		}
		res.Accuracy, res.FP32, res.Int8 = acc, fp, i8
		addMeta(q, map[string]string{MetaAccuracy: mustJSON(acc)})
		if opts.MaxDrop >= 0 && acc.Drop > opts.MaxDrop && !opts.Force {
			res.Duration = time.Since(start)
			if mode == GuardAgreement {
				return res, fmt.Errorf("%w: the int8 model's top-1 is the fp32 model's on %.2f%% of the images (disagreement %.2f points, limit %.2f); %s not written",
					ErrAccuracy, 100*acc.Agreement, acc.Drop, opts.MaxDrop, out)
			}
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

// checkDataset checks that a dataset is not empty and, when classes is
// set, that its class count is the model's.
func checkDataset(what string, ds data.Dataset, g *bitGraph, classes bool) error {
	if n := len(ds.Classes()); classes && n != g.meta.Classes {
		return fmt.Errorf("%w: the %s set has %d classes, the model %d (the labels guard needs the model's classes; --guard agreement compares fp32 and int8 without labels)",
			ErrData, what, n, g.meta.Classes)
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
						ferr = cmp.Or(ferr, err) // the first error
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

// guard evaluates the fp32 and int8 models on opts.Eval, one after the
// other: both against the labels with eval.Run (GuardLabels, which also
// gives the reports), or only recording their classes (GuardAgreement).
// Either way the agreement of the two models is measured.
func guard(ctx context.Context, fp32, int8 string, mode Guard, opts Options) (*Accuracy, *eval.Report, *eval.Report, error) {
	batch := max(opts.Batch, 16)
	run := func(path, phase string, k int) (*eval.Report, [][]int, error) {
		c, err := eval.OpenONNX(path, opts.Runtime, eval.Overrides{})
		if err != nil {
			return nil, nil, fmt.Errorf("quantize: %w", err)
		}
		defer c.Close()
		rec := &recorder{Classifier: c, k: k}
		progress := func(done, total int) { opts.Progress(phase, done, total) }
		var rep *eval.Report
		if mode == GuardLabels {
			rep, err = eval.Run(ctx, rec, opts.Eval, eval.Options{Batch: batch, Limit: opts.Limit, Progress: progress})
		} else {
			err = classify(ctx, rec, opts.Eval, batch, opts.Limit, progress)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("quantize: %s: %w", phase, err)
		}
		return rep, rec.top, nil
	}
	fp, fpTop, err := run(fp32, "eval fp32", 1)
	if err != nil {
		return nil, nil, nil, err
	}
	i8, i8Top, err := run(int8, "eval int8", 5)
	if err != nil {
		return nil, nil, nil, err
	}
	n := min(len(fpTop), len(i8Top))
	agree, agree5 := 0, 0
	for i := range n {
		if len(fpTop[i]) == 0 || len(i8Top[i]) == 0 {
			continue
		}
		if fpTop[i][0] == i8Top[i][0] {
			agree++
		}
		if slices.Contains(i8Top[i], fpTop[i][0]) {
			agree5++
		}
	}
	acc := &Accuracy{Data: opts.EvalName, Images: int64(n), Guard: mode.String(), MaxDrop: opts.MaxDrop, Forced: opts.Force}
	if n > 0 {
		acc.Agreement = float64(agree) / float64(n)
		acc.Top5Agreement = float64(agree5) / float64(n)
	}
	if mode == GuardLabels {
		acc.Images, acc.FP32Top1, acc.Int8Top1 = fp.Images, float64(fp.Top1), float64(i8.Top1)
		acc.Drop = round4(100 * (acc.FP32Top1 - acc.Int8Top1))
	} else {
		acc.Drop = round4(100 * (1 - acc.Agreement))
	}
	opts.Logger.Info("quantize: accuracy", "guard", acc.Guard, "fp32_top1", acc.FP32Top1, "int8_top1", acc.Int8Top1,
		"drop_points", acc.Drop, "agreement", acc.Agreement, "top5_agreement", acc.Top5Agreement)
	return acc, fp, i8, nil
}

// classify runs c over the first limit images of ds (all when limit is 0)
// in batches, with c's preprocessing, for what c records.
func classify(ctx context.Context, c eval.Classifier, ds data.Dataset, batch, limit int, progress func(done, total int)) error {
	pre := c.Preprocess()
	n := ds.Len()
	if limit > 0 {
		n = min(n, limit)
	}
	per := pre.Channels * pre.Size * pre.Size
	buf := make([]float32, batch*per)
	idx := make([]int, 0, batch)
	for done := 0; done < n; {
		if err := ctx.Err(); err != nil {
			return err
		}
		idx = idx[:0]
		for i := done; i < min(done+batch, n); i++ {
			idx = append(idx, i)
		}
		x := buf[:len(idx)*per]
		if err := data.Batch(ds, idx, pre.Size, pre.Channels, pre.Norm, false, nil, x); err != nil {
			return err
		}
		if _, _, err := c.Logits(ctx, x, len(idx)); err != nil {
			return err
		}
		done += len(idx)
		progress(done, n)
	}
	return nil
}

func round4(v float64) float64 {
	f, _ := strconv.ParseFloat(strconv.FormatFloat(v, 'f', 4, 64), 64)
	return f
}

// recorder remembers the k best classes of every image a classifier
// scores, best first.
type recorder struct {
	eval.Classifier
	k   int
	top [][]int
}

func (r *recorder) Logits(ctx context.Context, x []float32, n int) ([]float32, int, error) {
	l, c, err := r.Classifier.Logits(ctx, x, n)
	if err == nil && c > 0 {
		for i := range n {
			r.top = append(r.top, eval.TopK(l[i*c:(i+1)*c], max(r.k, 1)))
		}
	}
	return l, c, err
}
