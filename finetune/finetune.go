package finetune

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/bitrun/bitrun/data"
	"github.com/bitrun/bitrun/eval"
	"github.com/bitrun/bitrun/export"
	"github.com/bitrun/bitrun/internal/runfolder"
	"github.com/bitrun/bitrun/model"
	"github.com/bitrun/bitrun/nn"
	"github.com/bitrun/bitrun/runtime"
	"github.com/bitrun/bitrun/train"
)

// Training modes.
const (
	// ModeFull fine-tunes every parameter with the native engine.
	ModeFull = "full"
	// ModeHead freezes the trunk and trains the pre-head GroupNorm affine and
	// the linear head on cached trunk activations.
	ModeHead = "head"
)

// Files of a fine-tuning run folder, besides train's (metrics.jsonl,
// checkpoint.json, checkpoint/, weights.npz, curve.png, summary.json).
const (
	RuleFile      = "hyperrule.json" // the recipe as used, and the run's identity for --resume
	ModelFile     = "model.onnx"     // the final network, ready for eval and serve
	ConfusionFile = "confusion.png"  // confusion matrix of the final test evaluation
)

// Errors callers branch on.
var (
	// ErrOptions is wrapped for invalid options.
	ErrOptions = errors.New("finetune: invalid options")
	// ErrCacheTooLarge is wrapped when the trunk activations of head training
	// or adaptation would exceed Options.MaxCacheBytes.
	ErrCacheTooLarge = errors.New("finetune: activation cache too large")
	// ErrDiverged is wrapped when the loss becomes NaN or infinite (in both
	// modes: it is train.ErrDiverged, which full fine-tuning returns).
	ErrDiverged = train.ErrDiverged
	// ErrRunExists is wrapped when the run folder already holds a run and
	// Resume is not set.
	ErrRunExists = errors.New("finetune: run folder already holds a run (resume it or choose another folder)")
	// ErrResumeMismatch is wrapped when Resume meets a run made with other
	// options.
	ErrResumeMismatch = errors.New("finetune: run folder was made with different options")
)

// DefaultMaxCacheBytes bounds the trunk-activation cache of head training.
const DefaultMaxCacheBytes = 2 << 30

// Options configure Run. Rule is the recipe as it will be used: compute it
// with HyperRuleFor (on the selected training set, see Select) and apply
// overrides before calling Run. The settings follow one convention: a zero
// field takes its default, a negative one turns the setting off where it
// can be off and is invalid (ErrOptions) where it cannot.
type Options struct {
	Mode string    // ModeFull or ModeHead; "": ModeFull
	Rule HyperRule // schedule, resolution, MixUp, optimiser: values as used (see HyperRule)
	// Batch is the logical batch; the lr is Rule.BaseLR × Batch/Rule.BatchSize.
	// 0 means Rule.BatchSize; negative is invalid.
	Batch int
	// BatchSplit is full mode's number of micro-batches per step (gradient
	// accumulation); it must divide Batch. 0 means 1; negative is invalid.
	BatchSplit int
	NoFlip     bool // disable the random horizontal flip (wrong for digits, text)
	// Views is the number of augmented views of each training image whose
	// trunk activations head mode caches. 0: DefaultViews; negative is
	// invalid.
	Views int
	// ExamplesPerClass selects k examples per class (few-shot, seeded); 0
	// (or negative: few-shot off) uses the whole training set.
	ExamplesPerClass int
	Seed             uint64 // of the selection, data order, augmentation and MixUp; 0 is a seed like any other
	// AdaptResolution > 0 adds the train-to-test resolution adaptation step
	// at that resolution (at least 16; see the package documentation). 0 (the
	// default) or negative: no adaptation.
	AdaptResolution int
	// AdaptSteps is the length of the adaptation schedule (0: Rule.Steps/5,
	// at least 10); the HyperRule's shape is scaled to it. Negative is
	// invalid.
	AdaptSteps int
	// CheckpointEvery is the number of steps between checkpoints; 0 (the
	// default) or negative: only at the end and on cancellation.
	CheckpointEvery int
	Resume          bool
	OutDir          string
	EvalBatch       int // batch of the test evaluations; 0 (or negative): 128
	// Engine computes trunk activations in head mode and adaptation:
	// EngineAuto (also ""), EngineORT or EngineNative.
	Engine  string
	Runtime runtime.Options // ONNX Runtime settings for the trunk graph
	// MaxCacheBytes bounds the trunk activations head training and
	// adaptation cache (ErrCacheTooLarge beyond). 0: DefaultMaxCacheBytes;
	// negative: no bound.
	MaxCacheBytes int64
	Labels        []string // class names for the exported model (nil: the dataset's)
	// Source holds the pretrained weights; its head is replaced by a
	// zero-initialised one for the dataset's classes.
	Source     model.Params
	SourcePath string // recorded in the summary
	SourceSHA  string // hex SHA-256 of the source file, written to the ONNX metadata
	// Changes lists deviations from the computed HyperRule (flag overrides),
	// recorded in hyperrule.json and the summary.
	Changes []string
	Version string // bitrun version for the ONNX metadata

	Logger   *slog.Logger         // nil: discarded
	Progress func(train.Progress) // Phase "cache", "train", "adapt-cache", "adapt", "eval"; nil: none
}

// DefaultViews is head mode's number of cached augmented views per image.
const DefaultViews = 4

// Select returns the training examples a run uses: all of ds, or k per class
// picked with data.PerClass(ds, k, seed) when k > 0.
func Select(ds data.Dataset, k int, seed uint64) data.Dataset {
	if k <= 0 {
		return ds
	}
	return data.Subset(ds, data.PerClass(ds, k, seed))
}

// ImageArea is the pixel area (width × height) of the first image of ds, the
// image size the HyperRule's resolution tier reads.
func ImageArea(ds data.Dataset) (int, image.Rectangle, error) {
	if ds == nil || ds.Len() == 0 {
		return 0, image.Rectangle{}, errors.New("finetune: training set is empty")
	}
	img, err := ds.Image(0)
	if err != nil {
		return 0, image.Rectangle{}, fmt.Errorf("finetune: %w", err)
	}
	b := img.Bounds()
	return b.Dx() * b.Dy(), b, nil
}

// RunRecord is hyperrule.json: the recipe and what the run does with it. Two
// runs with equal records are the same run (Resume compares them).
type RunRecord struct {
	Mode             string    `json:"mode"`
	Rule             HyperRule `json:"hyperrule"`
	Changes          []string  `json:"changes_from_hyperrule"`
	Batch            int       `json:"batch"`
	BatchSplit       int       `json:"batch_split"`
	LR               float64   `json:"lr"` // BaseLR × Batch/BatchSize
	Flip             bool      `json:"flip"`
	TrainExamples    int       `json:"train_examples"`
	ExamplesPerClass int       `json:"examples_per_class,omitempty"`
	Replacement      bool      `json:"sampling_with_replacement"`
	Views            int       `json:"views,omitempty"`
	MixUpOn          string    `json:"mixup_on,omitempty"` // "pixels" or "trunk activations"
	AdaptResolution  int       `json:"adapt_resolution,omitempty"`
	AdaptSteps       int       `json:"adapt_steps,omitempty"`
	Seed             uint64    `json:"seed"`
	Source           string    `json:"source,omitempty"`
	SourceSHA        string    `json:"source_sha256,omitempty"`
	Arch             string    `json:"arch"`
	Classes          int       `json:"classes"`
}

// AdaptSummary reports the resolution adaptation step.
type AdaptSummary struct {
	Resolution int     `json:"resolution"`
	Steps      int     `json:"steps"`
	Examples   int     `json:"examples"`    // training images used (at most steps × batch)
	Top1Before float64 `json:"top1_before"` // test top-1 at Resolution before adaptation
	Top1After  float64 `json:"top1_after"`
	FinalLoss  float64 `json:"final_loss"`
	Seconds    float64 `json:"seconds"`
}

// Summary is summary.json of a fine-tuning run.
type Summary struct {
	Run          RunRecord     `json:"run"`
	Params       int64         `json:"params"`
	Trainable    int64         `json:"trainable_params"`
	Engine       string        `json:"trunk_engine,omitempty"` // head mode and adaptation
	Steps        int           `json:"steps"`
	ResumedAt    int           `json:"resumed_at"`
	FinalLoss    float64       `json:"final_loss"`
	CacheSeconds float64       `json:"cache_seconds,omitempty"`
	TrainSeconds float64       `json:"train_seconds"` // this process
	ImagesPerSec float64       `json:"images_per_s"`  // training examples per second (head: cached rows)
	TestExamples int           `json:"test_examples"`
	TrainRes     int           `json:"train_resolution"`
	Top1         float64       `json:"top1"` // native test top-1 at TrainRes after training
	Adapt        *AdaptSummary `json:"adapt,omitempty"`
	TestRes      int           `json:"test_resolution"` // resolution of the exported model
	FinalTop1    float64       `json:"final_top1"`      // native test top-1 of the exported weights at TestRes
	FinalTop5    float64       `json:"final_top5"`
	EvalSeconds  float64       `json:"eval_seconds"`
	WallSeconds  float64       `json:"wall_seconds"`
	Weights      string        `json:"weights"`
	ONNX         string        `json:"onnx"`
	GEMM         string        `json:"gemm"`
}

type runner struct {
	o       Options
	log     *slog.Logger
	cfg     model.Config
	ds      data.Dataset
	rec     RunRecord
	labels  []string
	classes int
	began   time.Time
}

// Run fine-tunes opts.Source on trainSet (few-shot selected when
// ExamplesPerClass > 0) following opts.Rule, evaluates on testSet and writes
// the run folder opts.OutDir: hyperrule.json, metrics.jsonl, checkpoints,
// weights.npz, model.onnx, curve.png, confusion.png and summary.json.
// Cancelling ctx saves a checkpoint and returns an error wrapping ctx.Err();
// Run again with Resume continues to the same result.
func Run(ctx context.Context, opts Options, trainSet, testSet data.Dataset) (*Summary, error) {
	r, err := newRunner(opts, trainSet, testSet)
	if err != nil {
		return nil, err
	}
	return r.run(ctx, testSet)
}

func newRunner(o Options, trainSet, testSet data.Dataset) (*runner, error) {
	if trainSet == nil || trainSet.Len() == 0 {
		return nil, fmt.Errorf("%w: training set is empty", ErrOptions)
	}
	if testSet == nil || testSet.Len() == 0 {
		return nil, fmt.Errorf("%w: test set is empty", ErrOptions)
	}
	if o.OutDir == "" {
		return nil, fmt.Errorf("%w: no run folder", ErrOptions)
	}
	if o.Source == nil {
		return nil, fmt.Errorf("%w: no source weights", ErrOptions)
	}
	if o.Mode == "" {
		o.Mode = ModeFull
	}
	if o.Mode != ModeFull && o.Mode != ModeHead {
		return nil, fmt.Errorf("%w: unknown mode %q (want %s or %s)", ErrOptions, o.Mode, ModeFull, ModeHead)
	}
	h := o.Rule
	if h.BatchSize <= 0 || h.BaseLR <= 0 || h.Steps <= 0 || h.Warmup < 0 || h.Warmup >= h.Steps {
		return nil, fmt.Errorf("%w: bad recipe: batch size %d, base lr %g, %d steps, warmup %d", ErrOptions, h.BatchSize, h.BaseLR, h.Steps, h.Warmup)
	}
	for i, d := range h.Decays {
		if d <= 0 || d > h.Steps || (i > 0 && d < h.Decays[i-1]) {
			return nil, fmt.Errorf("%w: decay steps %v must be sorted and within 1..%d", ErrOptions, h.Decays, h.Steps)
		}
	}
	if h.Crop < 16 || h.Resize < h.Crop {
		return nil, fmt.Errorf("%w: resolution %d -> %d (want crop >= 16 and resize >= crop)", ErrOptions, h.Resize, h.Crop)
	}
	if h.MixupAlpha < 0 {
		return nil, fmt.Errorf("%w: negative MixUp alpha %g", ErrOptions, h.MixupAlpha)
	}
	if o.Batch == 0 {
		o.Batch = h.BatchSize
	}
	if o.BatchSplit == 0 {
		o.BatchSplit = 1
	}
	if o.Batch < 1 || o.BatchSplit < 1 || o.Batch%o.BatchSplit != 0 {
		return nil, fmt.Errorf("%w: batch %d must be a positive multiple of batch split %d", ErrOptions, o.Batch, o.BatchSplit)
	}
	if o.Views == 0 {
		o.Views = DefaultViews
	}
	if o.Views < 1 {
		return nil, fmt.Errorf("%w: views %d (want >= 1)", ErrOptions, o.Views)
	}
	if o.AdaptResolution > 0 && o.AdaptResolution < 16 {
		return nil, fmt.Errorf("%w: adaptation resolution %d (want >= 16, or 0 for none)", ErrOptions, o.AdaptResolution)
	}
	if o.AdaptSteps < 0 {
		return nil, fmt.Errorf("%w: adaptation steps %d (want >= 1, or 0 for the default)", ErrOptions, o.AdaptSteps)
	}
	if o.AdaptSteps == 0 {
		o.AdaptSteps = max(10, h.Steps/5)
	}
	if o.EvalBatch <= 0 {
		o.EvalBatch = 128
	}
	if o.MaxCacheBytes == 0 {
		o.MaxCacheBytes = DefaultMaxCacheBytes
	}
	if o.Engine == "" {
		o.Engine = EngineAuto
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	classes := trainSet.Classes()
	if len(classes) == 0 {
		return nil, fmt.Errorf("%w: training set has no classes", ErrOptions)
	}
	if len(testSet.Classes()) != len(classes) {
		return nil, fmt.Errorf("%w: %d training classes, %d test classes", ErrOptions, len(classes), len(testSet.Classes()))
	}
	labels := o.Labels
	if labels == nil {
		labels = classes
	}
	if len(labels) != len(classes) {
		return nil, fmt.Errorf("%w: %d labels for %d classes", ErrOptions, len(labels), len(classes))
	}
	cfg, err := model.Infer(model.ReplaceHead(o.Source, len(classes)))
	if err != nil {
		return nil, fmt.Errorf("finetune: source weights: %w", err)
	}
	ds := Select(trainSet, o.ExamplesPerClass, o.Seed)
	rec := RunRecord{Mode: o.Mode, Rule: h, Changes: o.Changes, Batch: o.Batch, BatchSplit: o.BatchSplit,
		LR: h.BaseLR * float64(o.Batch) / float64(h.BatchSize), Flip: !o.NoFlip, TrainExamples: ds.Len(),
		ExamplesPerClass: o.ExamplesPerClass, Replacement: o.Batch > ds.Len(), Seed: o.Seed,
		Source: o.SourcePath, SourceSHA: o.SourceSHA, Arch: cfg.Name, Classes: cfg.Classes}
	if rec.Changes == nil {
		rec.Changes = []string{}
	}
	if o.Mode == ModeHead {
		rec.Views = o.Views
	}
	if h.MixupAlpha > 0 {
		rec.MixUpOn = "pixels"
		if o.Mode == ModeHead {
			rec.MixUpOn = "trunk activations"
		}
	}
	if o.AdaptResolution > 0 {
		rec.AdaptResolution, rec.AdaptSteps = o.AdaptResolution, o.AdaptSteps
	}
	return &runner{o: o, log: log, cfg: cfg, ds: ds, rec: rec, labels: labels, classes: len(classes)}, nil
}

func (r *runner) run(ctx context.Context, testSet data.Dataset) (*Summary, error) {
	o, dir := r.o, r.o.OutDir
	r.began = time.Now()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("finetune: %w", err)
	}
	if err := r.checkRecord(); err != nil {
		return nil, err
	}
	if stale, err := runfolder.RemoveStaleTemps(dir); err != nil {
		return nil, fmt.Errorf("finetune: %w", err)
	} else if len(stale) > 0 {
		r.log.Info("removed stale temporary files of an interrupted run", "files", stale)
	}
	// The trunk tensors are shared with Source (full mode trains a clone);
	// the head parameters that head mode updates in place are copied.
	params := model.ReplaceHead(r.o.Source, r.classes)
	for _, name := range headNames {
		if v := params[name]; v != nil {
			params[name] = &nn.Tensor{Shape: append([]int(nil), v.Shape...), Data: append([]float32(nil), v.Data...)}
		}
	}
	sum := &Summary{Run: r.rec, Params: r.cfg.ParamCount(), Steps: r.rec.Rule.Steps, TestExamples: testSet.Len(),
		TrainRes: r.rec.Rule.Crop, GEMM: nn.Backend().Name()}
	var err error
	switch o.Mode {
	case ModeFull:
		params, err = r.trainFull(ctx, params, sum)
	case ModeHead:
		params, err = r.trainHead(ctx, params, sum)
	}
	if err != nil {
		return nil, err
	}
	if err := train.PlotMetrics(filepath.Join(dir, train.MetricsFile), filepath.Join(dir, train.CurveFile)); err != nil {
		r.log.Warn("no training curve", "err", err)
	}
	t0 := time.Now()
	rep, err := r.evaluate(ctx, params, testSet, r.rec.Rule.Crop, "eval")
	if err != nil {
		return nil, err
	}
	sum.Top1 = float64(rep.Top1)
	r.log.Info("evaluated", "resolution", r.rec.Rule.Crop, "top1", sum.Top1)
	sum.TestRes = r.rec.Rule.Crop
	if o.AdaptResolution > 0 {
		before := rep
		if o.AdaptResolution != r.rec.Rule.Crop {
			if before, err = r.evaluate(ctx, params, testSet, o.AdaptResolution, "eval"); err != nil {
				return nil, err
			}
		}
		a, err := r.adapt(ctx, params)
		if err != nil {
			return nil, err
		}
		a.Top1Before = float64(before.Top1)
		if rep, err = r.evaluate(ctx, params, testSet, o.AdaptResolution, "eval"); err != nil {
			return nil, err
		}
		a.Top1After = float64(rep.Top1)
		r.log.Info("adapted", "resolution", a.Resolution, "top1_before", a.Top1Before, "top1_after", a.Top1After)
		sum.Adapt, sum.TestRes = a, o.AdaptResolution
	}
	sum.FinalTop1, sum.FinalTop5 = float64(rep.Top1), float64(rep.TopK)
	sum.EvalSeconds = time.Since(t0).Seconds()
	if sum.Adapt != nil {
		sum.EvalSeconds -= sum.Adapt.Seconds
	}
	if err := eval.WriteConfusionPNG(filepath.Join(dir, ConfusionFile), rep); err != nil {
		return nil, fmt.Errorf("finetune: %w", err)
	}
	sum.Weights = filepath.Join(dir, train.WeightsFile)
	if err := model.SaveNPZContext(ctx, sum.Weights, params); err != nil {
		return nil, fmt.Errorf("finetune: %w", err)
	}
	sum.ONNX = filepath.Join(dir, ModelFile)
	if _, err := export.Export(ctx, sum.ONNX, r.cfg, params, export.Options{Resolution: sum.TestRes, Labels: r.labels,
		SourceSHA: o.SourceSHA, Version: o.Version, Logger: r.log}); err != nil {
		return nil, fmt.Errorf("finetune: %w", err)
	}
	sum.WallSeconds = time.Since(r.began).Seconds()
	if err := runfolder.WriteJSON(filepath.Join(dir, train.SummaryFile), sum); err != nil {
		return nil, fmt.Errorf("finetune: %w", err)
	}
	return sum, nil
}

// checkRecord writes hyperrule.json for a new run, or checks it against the
// folder's on Resume.
func (r *runner) checkRecord() error {
	path := filepath.Join(r.o.OutDir, RuleFile)
	want, err := json.MarshalIndent(r.rec, "", "  ")
	if err != nil {
		return fmt.Errorf("finetune: %w", err)
	}
	want = append(want, '\n')
	got, err := os.ReadFile(path)
	switch {
	case err == nil && !r.o.Resume:
		return fmt.Errorf("%w: %s", ErrRunExists, r.o.OutDir)
	case err == nil:
		if string(got) != string(want) {
			return fmt.Errorf("%w: %s differs from the options given now", ErrResumeMismatch, path)
		}
		return nil
	case errors.Is(err, fs.ErrNotExist):
		if r.o.Resume && runfolder.HasCheckpoint(r.o.OutDir) {
			return fmt.Errorf("%w: %s has a checkpoint but no %s", ErrResumeMismatch, r.o.OutDir, RuleFile)
		}
		if !r.o.Resume && runfolder.HasCheckpoint(r.o.OutDir) {
			return fmt.Errorf("%w: %s", ErrRunExists, r.o.OutDir)
		}
		if err := runfolder.Write(path, want); err != nil {
			return fmt.Errorf("finetune: %w", err)
		}
		return nil
	default:
		return fmt.Errorf("finetune: %w", err)
	}
}

// trainFull fine-tunes every parameter with train.Run (native engine), whose
// checkpoints and metrics go to the run folder.
func (r *runner) trainFull(ctx context.Context, params model.Params, sum *Summary) (model.Params, error) {
	ts, err := train.Run(ctx, r.trainOptions(params), r.ds, nil)
	if err != nil {
		return nil, fmt.Errorf("finetune: %w", err)
	}
	sum.ResumedAt, sum.FinalLoss, sum.TrainSeconds, sum.ImagesPerSec = ts.ResumedAt, ts.FinalLoss, ts.TrainSeconds, ts.ImagesPerSec
	sum.Trainable = r.cfg.ParamCount()
	out, err := model.LoadNPZ(ts.Weights)
	if err != nil {
		return nil, fmt.Errorf("finetune: %w", err)
	}
	return out, nil
}

// trainOptions are the train.Options of full fine-tuning from params.
func (r *runner) trainOptions(params model.Params) train.Options {
	o, h := r.o, r.rec.Rule
	return train.Options{Arch: r.cfg.Name, Steps: h.Steps, Batch: o.Batch, BatchSplit: o.BatchSplit,
		Resolution: h.Crop, PreSize: h.Resize, Crop: true, Flip: !o.NoFlip, LR: r.rec.LR, Warmup: off(h.Warmup),
		Decays: append([]int{}, h.Decays...), Replacement: r.rec.Replacement, Momentum: off(h.Momentum),
		WeightDecay: off(h.WeightDecay), MixupAlpha: h.MixupAlpha, Freeze: train.PresetAll, Seed: o.Seed,
		CheckpointEvery: o.CheckpointEvery, Resume: o.Resume, EvalBatch: o.EvalBatch, OutDir: o.OutDir,
		Init: params, Logger: r.log, Progress: o.Progress}
}

// evaluate runs the native engine on testSet at res and returns the report.
func (r *runner) evaluate(ctx context.Context, params model.Params, testSet data.Dataset, res int, phase string) (*eval.Report, error) {
	m, err := model.New(r.cfg, params)
	if err != nil {
		return nil, fmt.Errorf("finetune: %w", err)
	}
	c, err := eval.NewNative(m, eval.Overrides{Size: res}, r.labels)
	if err != nil {
		return nil, fmt.Errorf("finetune: %w", err)
	}
	var progress func(done, total int)
	if r.o.Progress != nil {
		t0 := time.Now()
		progress = func(done, total int) {
			el := time.Since(t0)
			ips := float64(done) / el.Seconds()
			r.o.Progress(train.Progress{Phase: phase, Step: done, Steps: total, ImagesPerSec: ips, Elapsed: el,
				ETA: time.Duration(float64(total-done) / ips * float64(time.Second))})
		}
	}
	rep, err := eval.Run(ctx, c, testSet, eval.Options{Batch: r.o.EvalBatch, Progress: progress})
	if err != nil {
		return nil, fmt.Errorf("finetune: %w", err)
	}
	return rep, nil
}

// lrSchedule is the HyperRule's learning rate at the run's batch.
func (r *runner) schedule(h HyperRule) train.Schedule {
	return func(s int) float64 { return h.LR(s, r.o.Batch) }
}

// off is a rule value as train.Options takes it: the rule records values
// as used (0: none), where train.Options reads 0 as its default and a
// negative value as none.
func off[T int | float64](v T) T {
	if v == 0 {
		return -1
	}
	return v
}
