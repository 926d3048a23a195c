package train

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"io/fs"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/bitrun/bitrun/data"
	"github.com/bitrun/bitrun/internal/runfolder"
	"github.com/bitrun/bitrun/internal/setting"
	"github.com/bitrun/bitrun/model"
	"github.com/bitrun/bitrun/nn"
)

// Options configure Run. DefaultOptions gives the BiT upstream recipe. As
// in every bitrun settings struct, a zero field takes its default and, where
// a setting can be switched off, a negative value switches it off; each
// field says what its zero and negative values mean.
type Options struct {
	// Each numeric field's comment says what 0 and a negative value mean:
	// 0 is the default (DefaultOptions spells the defaults out), negative is
	// "none" where that means something, else an error.
	Arch       string  `json:"arch"`        // "tiny", "small", "R50x1", ...; "": "small"
	Steps      int     `json:"steps"`       // schedule length; 0: from Epochs; negative is an error
	Epochs     float64 `json:"epochs"`      // used when Steps is 0; 0: 1 epoch; negative is an error
	Batch      int     `json:"batch"`       // logical batch; 0: 128; negative is an error
	BatchSplit int     `json:"batch_split"` // micro-batches per step (gradient accumulation); 0: 1; negative is an error
	Resolution int     `json:"resolution"`  // train crop and eval size; 0: 32; else at least 16
	PreSize    int     `json:"pre_size"`    // resize before the random crop; 0: data.TrainPreSize; negative is an error
	Crop       bool    `json:"crop"`        // random crop (else resize straight to Resolution)
	Flip       bool    `json:"flip"`        // random horizontal flip (wrong for digits)
	LR         float64 `json:"lr"`          // base lr; 0: 0.03*Batch/256; negative is an error
	// Warmup is the number of linear warmup steps: 0 means the upstream
	// Steps/18 (5 of 90 epochs), negative means none.
	Warmup int `json:"warmup"`
	// Decays are the steps where the lr is multiplied by 0.1 (sorted); nil:
	// the upstream 1/3, 2/3 and 8/9 of the schedule; empty (not nil): none.
	// The fine-tuning HyperRule sets its own (200, 300, 400 of 500).
	Decays []int `json:"decays"`
	// Replacement draws every example of a batch uniformly with replacement
	// (a pure function of seed and position) instead of walking seeded
	// epoch permutations: BiT's few-shot sampler when the batch exceeds the
	// data.
	Replacement bool    `json:"replacement,omitempty"`
	Momentum    float64 `json:"momentum"` // SGD momentum; 0: 0.9; negative: none
	// WeightDecay applies to conv and head kernels; 0: 1e-4 (the upstream
	// recipe's); negative: none.
	WeightDecay float64 `json:"weight_decay"`
	MixupAlpha  float64 `json:"mixup_alpha"` // 0: none (the upstream recipe has none); negative: none
	Freeze      string  `json:"freeze"`      // Preset name: "all", "head", "head+gn"; "": "all"
	Seed        uint64  `json:"seed"`
	// CheckpointEvery saves a checkpoint every N steps; 0 (the default) or
	// negative: only on cancellation and at the end.
	CheckpointEvery int    `json:"checkpoint_every"`
	Resume          bool   `json:"resume"`     // continue the run in OutDir
	EvalBatch       int    `json:"eval_batch"` // 0: 256; negative is an error
	OutDir          string `json:"out_dir"`

	// Init are the starting weights (nil: model.Init for the seed).
	Init model.Params `json:"-"`
	// Logger receives events (nil: discarded).
	Logger *slog.Logger `json:"-"`
	// Progress is called after every step and during evaluation.
	Progress func(Progress) `json:"-"`
}

// The defaults a zero Options field takes.
const (
	defaultBatch       = 128
	defaultResolution  = 32
	defaultMomentum    = 0.9
	defaultWeightDecay = 1e-4
)

// DefaultOptions is the BiT upstream recipe: SGD momentum 0.9, lr 0.03 ×
// batch/256, weight decay 1e-4, linear warmup, ×0.1 at 1/3, 2/3 and 8/9,
// random crop and flip.
func DefaultOptions() Options {
	return Options{Arch: "small", Epochs: 1, Batch: defaultBatch, BatchSplit: 1, Resolution: defaultResolution, Crop: true, Flip: true,
		Momentum: defaultMomentum, WeightDecay: defaultWeightDecay, Freeze: PresetAll, Seed: 0, EvalBatch: 256}
}

// Progress reports the state of a run.
type Progress struct {
	Phase        string        `json:"phase"` // "train" or "eval"
	Step         int           `json:"step"`  // completed steps (eval: images done)
	Steps        int           `json:"steps"` // total (eval: images)
	Epoch        float64       `json:"epoch"`
	Loss         float64       `json:"loss"`      // mean over the step's batch
	BatchAcc     float64       `json:"batch_acc"` // top-1 on the step's (augmented) batch
	LR           float64       `json:"lr"`
	ImagesPerSec float64       `json:"images_per_s"`
	ETA          time.Duration `json:"-"`
	Elapsed      time.Duration `json:"-"`
}

// Summary is written to SummaryFile at the end of a run.
type Summary struct {
	Arch         string  `json:"arch"`
	Classes      int     `json:"classes"`
	Params       int64   `json:"params"`
	Steps        int     `json:"steps"`
	ResumedAt    int     `json:"resumed_at"`
	Examples     int     `json:"examples"`
	Epochs       float64 `json:"epochs"`
	FinalLoss    float64 `json:"final_loss"`
	TrainSeconds float64 `json:"train_seconds"` // this process only
	ImagesPerSec float64 `json:"images_per_s"`
	TestExamples int     `json:"test_examples"`
	TestAccuracy float64 `json:"test_accuracy"`
	EvalSeconds  float64 `json:"eval_seconds"`
	Weights      string  `json:"weights"`
	GEMM         string  `json:"gemm"`
	Options      Options `json:"options"`
}

// Run trains a BiT network on trainSet following opts, writing the run folder
// opts.OutDir: metrics.jsonl, checkpoints (every CheckpointEvery steps and when
// ctx is cancelled), and at the end weights.npz and summary.json after
// evaluating on testSet (nil skips evaluation). When ctx is cancelled Run
// saves a checkpoint and returns an error wrapping ctx.Err(); Run again with
// Resume continues to the same final weights as an uninterrupted run.
func Run(ctx context.Context, opts Options, trainSet, testSet data.Dataset) (*Summary, error) {
	r, err := newRunner(opts, trainSet)
	if err != nil {
		return nil, err
	}
	return r.run(ctx, testSet)
}

type runner struct {
	o      Options
	cfg    model.Config
	ds     data.Dataset
	n      int // examples
	steps  int
	sched  Schedule
	key    runKey
	log    *slog.Logger
	permMu sync.Mutex
	perms  map[int][]int
}

func newRunner(o Options, ds data.Dataset) (*runner, error) {
	if ds == nil || ds.Len() == 0 {
		return nil, errors.New("train: training set is empty")
	}
	if o.OutDir == "" {
		return nil, errors.New("train: no run folder (OutDir)")
	}
	if o.Arch == "" {
		o.Arch = "small"
	}
	if o.Batch == 0 {
		o.Batch = defaultBatch
	}
	if o.Resolution == 0 {
		o.Resolution = defaultResolution
	}
	if o.BatchSplit == 0 {
		o.BatchSplit = 1
	}
	if o.EvalBatch == 0 {
		o.EvalBatch = 256
	}
	switch {
	case o.Steps < 0 || o.Epochs < 0:
		return nil, fmt.Errorf("train: negative schedule length (steps %d, epochs %g)", o.Steps, o.Epochs)
	case o.LR < 0 || o.PreSize < 0 || o.EvalBatch < 0:
		return nil, fmt.Errorf("train: negative lr %g, resize %d or eval batch %d", o.LR, o.PreSize, o.EvalBatch)
	}
	if o.Batch <= 0 || o.BatchSplit <= 0 || o.Batch%o.BatchSplit != 0 {
		return nil, fmt.Errorf("train: batch %d must be a positive multiple of batch split %d", o.Batch, o.BatchSplit)
	}
	if o.Resolution < 16 {
		return nil, fmt.Errorf("train: resolution %d too small (want >= 16)", o.Resolution)
	}
	if o.PreSize == 0 {
		o.PreSize = data.TrainPreSize(o.Resolution)
	}
	if !o.Crop {
		o.PreSize = o.Resolution
	}
	if o.PreSize < o.Resolution {
		return nil, fmt.Errorf("train: resize %d smaller than crop %d", o.PreSize, o.Resolution)
	}
	if o.Freeze == "" {
		o.Freeze = PresetAll
	}
	if _, err := Preset(o.Freeze); err != nil {
		return nil, err
	}
	cfg, err := model.Arch(o.Arch, len(ds.Classes()))
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	n := ds.Len()
	steps := o.Steps
	if steps == 0 {
		epochs := o.Epochs
		if epochs == 0 {
			epochs = 1
		}
		steps = int(math.Ceil(epochs * float64(n) / float64(o.Batch)))
	}
	o.Steps = steps
	if o.LR == 0 {
		o.LR = UpstreamLR(o.Batch)
	}
	// o.Warmup stays as given (0: the default, negative: none) so that
	// config.json resumes the same way; warmup is the resolved count.
	warmup := setting.Resolve(o.Warmup, steps/18, 0)
	sched, err := UpstreamSchedule(o.LR, steps, warmup)
	if err != nil {
		return nil, err
	}
	if o.Decays != nil {
		for i, d := range o.Decays {
			if d <= 0 || d > steps || (i > 0 && d < o.Decays[i-1]) {
				return nil, fmt.Errorf("train: bad decay steps %v for %d steps (want sorted, in 1..%d)", o.Decays, steps, steps)
			}
		}
		sched = StepSchedule(o.LR, warmup, o.Decays, 0.1)
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// Momentum and WeightDecay stay as given, like Warmup; the key holds
	// the values used.
	key := runKey{Arch: cfg.Name, Classes: cfg.Classes, Steps: steps, Batch: o.Batch, Resolution: o.Resolution,
		PreSize: o.PreSize, Crop: o.Crop, Flip: o.Flip, LR: o.LR, Warmup: warmup, Momentum: setting.Resolve(o.Momentum, defaultMomentum, 0),
		WeightDecay: setting.Resolve(o.WeightDecay, defaultWeightDecay, 0), MixupAlpha: o.MixupAlpha, Freeze: o.Freeze, Examples: n,
		Decays: decayKey(o.Decays), Replacement: o.Replacement}
	return &runner{o: o, cfg: cfg, ds: ds, n: n, steps: steps, sched: sched, key: key, log: log, perms: map[int][]int{}}, nil
}

// decayKey renders explicit decay steps for the checkpoint's run key.
func decayKey(d []int) string {
	if d == nil {
		return ""
	}
	if len(d) == 0 {
		return "none"
	}
	return strings.Trim(strings.Join(strings.Fields(fmt.Sprint(d)), ","), "[]")
}

// Seeds of the pure functions of (seed, position) used for data order and
// augmentation.
const (
	saltOrder = 0x6a09e667f3bcc908
	saltAug   = 0xbb67ae8584caa73b
	saltMix   = 0x3c6ef372fe94f82b
	saltDraw  = 0xa54ff53a5f1d36f1
)

// example returns the dataset index at global sample position pos: epoch e =
// pos/N walks a permutation that depends only on (seed, e).
func (r *runner) example(pos int) int {
	if r.o.Replacement {
		return rand.New(rand.NewPCG(r.o.Seed^saltDraw, uint64(pos))).IntN(r.n)
	}
	e := pos / r.n
	r.permMu.Lock()
	defer r.permMu.Unlock()
	p, ok := r.perms[e]
	if !ok {
		for k := range r.perms {
			if k < e-1 {
				delete(r.perms, k)
			}
		}
		p = data.Shuffled(r.n, r.o.Seed^saltOrder+uint64(e)*0x9e3779b97f4a7c15)
		r.perms[e] = p
	}
	return p[pos%r.n]
}

// trainBatch fills x [B,3,R,R] and labels for step s: a pure function of
// (seed, s).
func (r *runner) trainBatch(s int, x *nn.Tensor, labels []int) error {
	b, res, pre := r.o.Batch, r.o.Resolution, r.o.PreSize
	per := 3 * res * res
	errs := make([]error, b)
	nn.ParallelFor(b, func(j int) {
		pos := s*b + j
		idx := r.example(pos)
		labels[j] = r.ds.Label(idx)
		img, err := r.ds.Image(idx)
		if err != nil {
			errs[j] = fmt.Errorf("train: example %d: %w", idx, err)
			return
		}
		rng := rand.New(rand.NewPCG(r.o.Seed^saltAug, uint64(pos)))
		augment(img, pre, res, r.o.Crop, r.o.Flip, rng, x.Data[j*per:(j+1)*per])
	})
	return errors.Join(errs...)
}

// augment is the BiT train preprocessing with switchable parts: resize to
// pre×pre, random crop to res×res (when crop), random horizontal flip (when
// flip). It draws the crop's x and y offsets and then the flip from rng, as
// data.TrainTensor does.
func augment(img image.Image, pre, res int, crop, flip bool, rng *rand.Rand, dst []float32) {
	if !crop && !flip {
		data.EvalTensor(img, res, 3, data.BiTNorm, dst)
		return
	}
	full := make([]float32, 3*pre*pre)
	data.EvalTensor(img, pre, 3, data.BiTNorm, full)
	ox, oy := 0, 0
	if crop {
		ox, oy = rng.IntN(pre-res+1), rng.IntN(pre-res+1)
	}
	mirror := flip && rng.IntN(2) == 1
	for c := 0; c < 3; c++ {
		for y := 0; y < res; y++ {
			src := full[(c*pre+oy+y)*pre+ox:][:res]
			out := dst[(c*res+y)*res:][:res]
			if mirror {
				for i, v := range src {
					out[res-1-i] = v
				}
			} else {
				copy(out, src)
			}
		}
	}
}

// metricLine is one line of metrics.jsonl.
type metricLine = runfolder.Metric

// trainState is a run's state once restored: where it starts, the weights,
// the optimiser and the net that trains them.
type trainState struct {
	start  int
	params model.Params
	sgd    *SGD
	net    *Net
}

// stepBuffers are the buffers every training step reuses.
type stepBuffers struct {
	x          *nn.Tensor
	labels     []int
	targets    []float32
	mixScratch []float32 // MixUp, allocated on first use
	partner    []int
	dominant   []int // MixUp's scored labels, allocated on first use
	preds      []int
}

// run trains from the run folder's state (restore) through the remaining
// steps (step, then report, each), then writes the weights, the curve and
// the summary and evaluates (finish). Cancelling ctx saves a checkpoint.
func (r *runner) run(ctx context.Context, testSet data.Dataset) (*Summary, error) {
	st, err := r.restore()
	if err != nil {
		return nil, err
	}
	metrics, err := runfolder.OpenMetrics(r.o.OutDir, st.start)
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	defer metrics.Close()

	b, res := r.o.Batch, r.o.Resolution
	buf := &stepBuffers{x: nn.New(b, 3, res, res), labels: make([]int, b), targets: make([]float32, b*r.cfg.Classes),
		partner: make([]int, b), preds: make([]int, 0, b/r.o.BatchSplit)}
	began := time.Now()
	var loss float64
	for s := st.start; s < r.steps; s++ {
		if err := ctx.Err(); err != nil {
			if cerr := r.checkpoint(st, s); cerr != nil {
				return nil, errors.Join(fmt.Errorf("train: interrupted at step %d: %w", s, err), cerr)
			}
			return nil, fmt.Errorf("train: interrupted at step %d (checkpoint saved; resume to continue): %w", s, err)
		}
		var correct int
		var lr float64
		if loss, correct, lr, err = r.step(st, buf, s); err != nil {
			return nil, err
		}
		if err := r.report(st, metrics, s, began, loss, correct, lr); err != nil {
			return nil, err
		}
	}
	return r.finish(ctx, st, testSet, loss, time.Since(began))
}

// restore prepares the run folder (stale temporary files removed) and
// returns the run's state: the checkpoint's when resuming (refused when it
// belongs to another run), else fresh weights. It records the options in
// config.json.
func (r *runner) restore() (*trainState, error) {
	o, dir := r.o, r.o.OutDir
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	if stale, err := runfolder.RemoveStaleTemps(dir); err != nil {
		return nil, fmt.Errorf("train: %w", err)
	} else if len(stale) > 0 {
		r.log.Info("removed stale temporary files of an interrupted run", "files", stale)
	}
	st := &trainState{sgd: &SGD{Momentum: r.key.Momentum, WeightDecay: r.key.WeightDecay}}
	ck, err := readCheckpoint(dir)
	switch {
	case err == nil && !o.Resume:
		return nil, fmt.Errorf("%w: %s", ErrRunExists, dir)
	case err == nil:
		if ck.Run != r.key || ck.Seed != o.Seed {
			return nil, fmt.Errorf("%w: %s (the checkpoint's value -> the value given now)", ErrResumeMismatch,
				strings.Join(keyDiff(ck.Run, ck.Seed, r.key, o.Seed), ", "))
		}
		if err := runfolder.CheckStep(dir, ck.Step, r.steps); err != nil {
			return nil, fmt.Errorf("train: %w", err)
		}
		st.params, st.sgd.Velocity, err = loadCheckpoint(dir, ck)
		if err != nil {
			return nil, err
		}
		if err := model.Check(r.cfg, st.params); err != nil {
			return nil, fmt.Errorf("train: checkpoint: %w", err)
		}
		st.start = ck.Step
		r.log.Info("resuming", "dir", dir, "step", st.start, "steps", r.steps)
	case errors.Is(err, fs.ErrNotExist):
		if o.Init != nil {
			st.params = o.Init.Clone()
		} else {
			st.params = model.Init(r.cfg, int64(o.Seed))
		}
	default:
		return nil, err
	}
	if err := runfolder.WriteJSON(filepath.Join(dir, ConfigFile), struct {
		Options Options      `json:"options"`
		Model   model.Config `json:"model"`
	}{o, r.cfg}); err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	trainable, _ := Preset(o.Freeze)
	if st.net, err = NewNet(r.cfg, st.params, trainable); err != nil {
		return nil, err
	}
	return st, nil
}

// checkpoint saves the weights and the optimiser state as of step.
func (r *runner) checkpoint(st *trainState, step int) error {
	err := saveCheckpoint(r.o.OutDir, Checkpoint{Step: step, Seed: r.o.Seed, Run: r.key}, st.params, st.sgd.Velocity)
	if err == nil {
		r.log.Info("checkpoint", "step", step)
	}
	return err
}

// step runs training step s: the step's batch (MixUp applied when asked),
// forward and backward over its micro-batches, the SGD update. It returns
// the mean loss, how many images the net got right (against the dominant
// label under MixUp) and the lr.
func (r *runner) step(st *trainState, buf *stepBuffers, s int) (loss float64, correct int, lr float64, err error) {
	o := r.o
	classes := r.cfg.Classes
	b, res := o.Batch, o.Resolution
	micro := b / o.BatchSplit
	x, labels, targets := buf.x, buf.labels, buf.targets
	if err := r.trainBatch(s, x, labels); err != nil {
		return 0, 0, 0, err
	}
	if err := OneHot(labels, classes, targets); err != nil {
		return 0, 0, 0, err
	}
	scored := labels // the labels BatchAcc compares with
	if o.MixupAlpha > 0 {
		rng := rand.New(rand.NewPCG(o.Seed^saltMix, uint64(s)))
		lam := float32(Beta(rng, o.MixupAlpha))
		for i, p := range rng.Perm(b) {
			buf.partner[i] = p
		}
		if buf.mixScratch == nil {
			buf.mixScratch = make([]float32, x.Len())
		}
		if err := MixUp(x, labels, buf.partner, classes, lam, targets, buf.mixScratch); err != nil {
			return 0, 0, 0, err
		}
		if buf.dominant == nil {
			buf.dominant = make([]int, b)
		}
		scored = DominantLabels(labels, buf.partner, lam, buf.dominant)
	}
	per := 3 * res * res
	for m := 0; m < o.BatchSplit; m++ {
		xm := nn.FromData(x.Data[m*micro*per:(m+1)*micro*per], micro, 3, res, res)
		l, logits, err := st.net.ForwardBackward(xm, targets[m*micro*classes:(m+1)*micro*classes], 1/float32(b))
		if err != nil {
			return 0, 0, 0, err
		}
		loss += l
		buf.preds = nn.Argmax(logits, buf.preds)
		for i, p := range buf.preds {
			if p == scored[m*micro+i] {
				correct++
			}
		}
	}
	loss /= float64(b)
	if math.IsNaN(loss) || math.IsInf(loss, 0) {
		return 0, 0, 0, fmt.Errorf("%w (%g) at step %d: lower the learning rate", ErrDiverged, loss, s)
	}
	lr = r.sched(s)
	if err := st.net.Step(st.sgd, lr); err != nil {
		return 0, 0, 0, err
	}
	st.net.ZeroGrad()
	return loss, correct, lr, nil
}

// report records step s: a metrics.jsonl line, the Progress callback, and
// a checkpoint every CheckpointEvery steps.
func (r *runner) report(st *trainState, metrics *runfolder.Metrics, s int, began time.Time, loss float64, correct int, lr float64) error {
	o, b := r.o, r.o.Batch
	done := s + 1
	el := time.Since(began)
	ips := float64((done-st.start)*b) / el.Seconds()
	eta := time.Duration(float64(r.steps-done) * float64(b) / ips * float64(time.Second))
	p := Progress{Phase: "train", Step: done, Steps: r.steps, Epoch: float64(done*b) / float64(r.n), Loss: loss,
		BatchAcc: float64(correct) / float64(b), LR: lr, ImagesPerSec: ips, ETA: eta, Elapsed: el}
	if err := metrics.Append(metricLine{Step: done, Epoch: p.Epoch, Loss: loss, BatchAcc: p.BatchAcc, LR: lr, ImagesPerSec: ips, Elapsed: el.Seconds()}); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	if o.Progress != nil {
		o.Progress(p)
	}
	if o.CheckpointEvery > 0 && done%o.CheckpointEvery == 0 && done < r.steps {
		return r.checkpoint(st, done)
	}
	return nil
}

// finish saves the final checkpoint and weights, plots the curve,
// evaluates on testSet (when given) and writes the summary. loss is the
// last step's, trainTime the time the steps of this session took.
func (r *runner) finish(ctx context.Context, st *trainState, testSet data.Dataset, loss float64, trainTime time.Duration) (*Summary, error) {
	o, dir := r.o, r.o.OutDir
	b, start := o.Batch, st.start
	if start < r.steps || !HasCheckpoint(dir) {
		if err := r.checkpoint(st, r.steps); err != nil {
			return nil, err
		}
	}
	if err := model.SaveNPZ(filepath.Join(dir, WeightsFile), st.params); err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	if err := PlotMetrics(filepath.Join(dir, MetricsFile), filepath.Join(dir, CurveFile)); err != nil {
		r.log.Warn("no training curve", "err", err)
	}
	sum := &Summary{Arch: r.cfg.Name, Classes: r.cfg.Classes, Params: r.cfg.ParamCount(), Steps: r.steps, ResumedAt: start,
		Examples: r.n, Epochs: float64(r.steps*b) / float64(r.n), FinalLoss: loss, TrainSeconds: trainTime.Seconds(),
		Weights: filepath.Join(dir, WeightsFile), GEMM: nn.Backend().Name(), Options: o}
	if start < r.steps {
		sum.ImagesPerSec = float64((r.steps-start)*b) / trainTime.Seconds()
	} else if prev, err := os.ReadFile(filepath.Join(dir, SummaryFile)); err == nil {
		// A finished run re-evaluated: keep the training figures it had.
		var p Summary
		if json.Unmarshal(prev, &p) == nil {
			sum.ResumedAt, sum.FinalLoss, sum.TrainSeconds, sum.ImagesPerSec, sum.GEMM = p.ResumedAt, p.FinalLoss, p.TrainSeconds, p.ImagesPerSec, p.GEMM
		}
	}
	if testSet != nil {
		t0 := time.Now()
		acc, err := Evaluate(ctx, st.net, testSet, o.Resolution, o.EvalBatch, o.Progress)
		if err != nil {
			return nil, err
		}
		sum.TestExamples, sum.TestAccuracy, sum.EvalSeconds = testSet.Len(), acc, time.Since(t0).Seconds()
		r.log.Info("evaluated", "examples", testSet.Len(), "top1", acc)
	}
	if err := runfolder.WriteJSON(filepath.Join(dir, SummaryFile), sum); err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	return sum, nil
}

// Evaluate returns the top-1 accuracy of net on ds, preprocessed the BiT eval
// way (square resize to res). progress, when non-nil, is called per batch.
func Evaluate(ctx context.Context, net *Net, ds data.Dataset, res, batch int, progress func(Progress)) (float64, error) {
	n := ds.Len()
	if n == 0 {
		return 0, errors.New("train: evaluation set is empty")
	}
	if batch <= 0 {
		batch = 256
	}
	per := 3 * res * res
	buf := make([]float32, batch*per)
	labels := make([]int, batch)
	var preds []int
	correct := 0
	t0 := time.Now()
	for i0 := 0; i0 < n; i0 += batch {
		if err := ctx.Err(); err != nil {
			return 0, fmt.Errorf("train: evaluation interrupted: %w", err)
		}
		bn := min(batch, n-i0)
		errs := make([]error, bn)
		nn.ParallelFor(bn, func(j int) {
			img, err := ds.Image(i0 + j)
			if err != nil {
				errs[j] = fmt.Errorf("train: test example %d: %w", i0+j, err)
				return
			}
			labels[j] = ds.Label(i0 + j)
			data.EvalTensor(img, res, 3, data.BiTNorm, buf[j*per:(j+1)*per])
		})
		if err := errors.Join(errs...); err != nil {
			return 0, err
		}
		logits, err := net.Forward(nn.FromData(buf[:bn*per], bn, 3, res, res))
		if err != nil {
			return 0, err
		}
		preds = nn.Argmax(logits, preds)
		for j, p := range preds {
			if p == labels[j] {
				correct++
			}
		}
		if progress != nil {
			el := time.Since(t0)
			done := i0 + bn
			ips := float64(done) / el.Seconds()
			progress(Progress{Phase: "eval", Step: done, Steps: n, ImagesPerSec: ips, Elapsed: el,
				ETA: time.Duration(float64(n-done) / ips * float64(time.Second))})
		}
	}
	return float64(correct) / float64(n), nil
}
