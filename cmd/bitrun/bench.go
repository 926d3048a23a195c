package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	goruntime "runtime"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/bitrun/bitrun/export/meta"
	"github.com/bitrun/bitrun/internal/cputime"
	"github.com/bitrun/bitrun/model"
	"github.com/bitrun/bitrun/nn"
	"github.com/bitrun/bitrun/runtime"
	"github.com/bitrun/bitrun/train"
)

// benchResult is what bench prints (also as JSON).
type benchResult struct {
	Engine     string  `json:"engine"` // "onnx" or "native"
	Detail     string  `json:"detail"` // provider / GEMM backend
	Model      string  `json:"model"`
	Batch      int     `json:"batch"`
	Channels   int     `json:"channels"`
	Resolution int     `json:"resolution"`
	Runs       int     `json:"runs"`
	Warmup     int     `json:"warmup"`
	BatchMs    pctls   `json:"batch_ms"`
	ImageMs    pctls   `json:"image_ms"`
	ImagesPerS pctls   `json:"images_per_sec"` // p10/p90 from the p90/p10 latencies
	Seconds    float64 `json:"seconds"`
	// Streams is the number of runs in flight at once (--streams); with
	// more than one, Throughput is what counts: images of every stream per
	// wall-clock second.
	Streams    int     `json:"streams"`
	Throughput float64 `json:"throughput_images_per_sec"`
	// CPUMsPerImage is the process CPU time (user+system, every thread,
	// native libraries included) per timed image; 0 where the OS does not
	// report it. Unlike wall time it barely moves when the machine is busy.
	CPUMsPerImage float64 `json:"cpu_ms_per_image,omitempty"`
	// CoresBusy is the process CPU time over the wall time of the timed
	// runs: how many cores the work kept busy on average.
	CoresBusy float64 `json:"cores_busy,omitempty"`
	// GFLOPs is the product work per second of the median run, where it is
	// known (--train with every parameter trained, --gemm).
	GFLOPs float64 `json:"gflop_per_sec,omitempty"`
}

type pctls struct {
	Median float64 `json:"median"`
	P10    float64 `json:"p10"`
	P90    float64 `json:"p90"`
}

// percentile is the nearest-rank q-quantile of sorted xs.
func percentile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted)-1) + 0.5)
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func newBenchCmd() *cobra.Command {
	var o benchOptions
	cmd := &cobra.Command{
		Use:   "bench (--onnx FILE | --weights FILE | --model NAME | --arch NAME) [--train]",
		Short: "Time inference or a training step: ms/image and images/s (median, p10, p90 of repeated runs)",
		Long: `Time batched inference of one model on random input, with ONNX Runtime
(--onnx) or bitrun's native engine (--weights/--model, or --arch for freshly
initialised weights). Each run is one batch; the first --warmup runs are not
counted. Prints the median, p10 and p90 of the batch latency, the per-image
latency and the throughput, the process CPU time per image and how many
cores were busy on average (CPU time over wall time).

With --train each run is one full native training step instead: forward,
softmax cross-entropy on random labels, backward, gradients in the
checkpoint layout and an SGD update (momentum 0.9, weight decay 1e-4), the
step that train and finetune --train full repeat. --freeze takes train's
presets (all, head, head+gn).`,
		Args: cobra.NoArgs,
		RunE: runE(bound(&o, benchFlags), runBench),
	}
	addModelFlags(cmd, &o.model)
	f := cmd.Flags()
	f.IntVar(&o.resolution, "resolution", 128, "input side in pixels (default for --onnx: the model's fixed input size, else its bitrun.resolution metadata, as predict/eval/serve; else 128)")
	f.IntVar(&o.channels, "channels", 0, "input channels (default: the model's input shape, else 3)")
	// bench.batch, bench.runs and bench.warmup, read by benchFlags.
	f.Int("batch", 8, "images per run")
	f.Int("runs", 20, "timed runs")
	f.Int("warmup", 3, "untimed runs first")
	f.IntVar(&o.streams, "streams", 1, "ONNX: runs in flight at once, each --runs long (with --threads 0 each gets cores/streams threads, like bitrun serve's workers)")
	f.BoolVar(&o.json, "json", false, "print JSON")
	f.StringVar(&o.arch, "arch", "", "native engine on freshly initialised weights of this architecture (R50x1, small, ...; see bitrun init)")
	f.IntVar(&o.classes, "classes", 10, "classes of the --arch head")
	f.BoolVar(&o.train, "train", false, "time a native training step (forward, backward, SGD update) instead of inference")
	f.StringVar(&o.freeze, "freeze", train.PresetAll, "with --train: parameters that train (all, head, head+gn)")
	f.BoolVar(&o.gemm, "gemm", false, "time the pure-Go GEMM on all cores instead (the peak the training step is measured against)")
	f.StringVar(&o.cpuprofile, "cpuprofile", "", "write a CPU profile (pprof) of the timed runs to this file")
	bindKey(cmd, "bench.batch", "batch")
	bindKey(cmd, "bench.runs", "runs")
	bindKey(cmd, "bench.warmup", "warmup")
	return cmd
}

// benchOptions is what bench runs: bound to its flags, completed from the
// configuration by benchFlags and checked by validate.
type benchOptions struct {
	model   modelRef // --onnx (ONNX Runtime) or the native checkpoint, resolved (a --model pulled) by runBench
	arch    string   // native engine on fresh weights of this architecture
	classes int      // of the --arch head

	resolution      int
	resolutionGiven bool // --resolution given (else an ONNX model's own size wins)
	channels        int  // 0: the model's
	batch, runs     int
	warmup          int // untimed runs first
	streams         int // ONNX runs in flight at once

	train       bool   // time a training step
	freeze      string // with train: train's preset
	freezeGiven bool
	gemm        bool // time the pure-Go GEMM alone

	json       bool
	cpuprofile string // CPU profile of the timed runs
}

// benchFlags completes bench's options with the configuration keys, what
// was given and the model; nothing is opened.
func benchFlags(cmd *cobra.Command, _ []string, o *benchOptions) error {
	if err := configInts(cmd,
		intKey{"bench.batch", 1, 4096, &o.batch},
		intKey{"bench.runs", 1, math.MaxInt, &o.runs},
		intKey{"bench.warmup", 0, math.MaxInt, &o.warmup},
	); err != nil {
		return err
	}
	o.resolutionGiven = cmd.Flags().Changed("resolution")
	o.freezeGiven = cmd.Flags().Changed("freeze")
	return o.model.complete(cmd)
}

// native reports whether o times bitrun's native engine.
func (o benchOptions) native() bool { return !o.gemm && (o.model.weights.given() || o.arch != "") }

// validate checks o's flags against each other (usage errors).
func (o benchOptions) validate() error {
	switch {
	case o.gemm:
		if o.arch != "" || o.train || o.model.weights.given() || o.model.onnx != "" {
			return usagef("--gemm times the GEMM alone: no model flags")
		}
	case o.arch != "":
		if o.model.onnx != "" || o.model.weights.given() {
			return usagef("--arch and --onnx/--weights/--model are exclusive")
		}
	case o.model.check() != nil:
		return o.model.check()
	}
	native := o.native()
	switch {
	case checkResolution("--resolution", o.resolution, false) != nil:
		return checkResolution("--resolution", o.resolution, false)
	case o.batch <= 0 || o.runs <= 0 || o.warmup < 0:
		return usagef("--batch and --runs must be positive and --warmup >= 0")
	case o.channels < 0:
		return usagef("--channels %d: must be >= 0", o.channels)
	case o.streams < 1 || o.streams > 64:
		return usagef("--streams %d: want 1..64", o.streams)
	case o.streams > 1 && native:
		return usagef("--streams applies to --onnx models (the native engine uses every core for one batch)")
	case o.train && !native:
		return usagef("--train times the native engine: give --weights, --model or --arch")
	case o.freezeGiven && !o.train:
		return usagef("--freeze applies to --train")
	case native && o.channels != 0 && o.channels != 3:
		return usagef("--channels %d: BiT models take 3", o.channels)
	}
	return nil
}

// nativeBench loads (pulling a --model) or, for --arch, initialises the
// native model bench runs.
func nativeBench(ctx context.Context, w weightsRef, arch string, classes int) (*model.Model, string, error) {
	if arch == "" {
		weights, err := w.resolve(ctx)
		if err != nil {
			return nil, "", err
		}
		m, err := model.Load(weights)
		return m, weights, err
	}
	cfg, err := model.Arch(arch, classes)
	if err != nil {
		return nil, "", usageError{err}
	}
	m, err := model.New(cfg, model.Init(cfg, 1))
	return m, cfg.Name + " (fresh weights)", err
}

// trainStep returns a bench step that runs one training step of m on x
// (batch images of res pixels) with random labels.
func trainStep(m *model.Model, freeze string, batch, res int) (func(ctx context.Context, x []float32) error, error) {
	trainable, err := train.Preset(freeze)
	if err != nil {
		return nil, usageError{err}
	}
	net, err := train.NewNet(m.Config, m.Params, trainable)
	if err != nil {
		return nil, err
	}
	classes := m.Config.Classes
	labels := make([]int, batch)
	for i := range labels {
		labels[i] = i % classes
	}
	targets := make([]float32, batch*classes)
	if err := train.OneHot(labels, classes, targets); err != nil {
		return nil, err
	}
	opt := &train.SGD{Momentum: 0.9, WeightDecay: 1e-4}
	return func(ctx context.Context, x []float32) error {
		net.ZeroGrad()
		if _, _, err := net.ForwardBackward(nn.FromData(x, batch, 3, res, res), targets, 1/float32(batch)); err != nil {
			return err
		}
		if err := net.Step(opt, 1e-3); err != nil {
			return err
		}
		return ctx.Err()
	}, nil
}

// runBench times o's runs and prints the report to stdout, progress to
// stderr.
func runBench(ctx context.Context, o benchOptions, stdout, stderr io.Writer) error {
	res, channels, batch, runs, warmup, streams := o.resolution, o.channels, o.batch, o.runs, o.warmup, o.streams
	doTrain, freeze := o.train, o.freeze
	r := benchResult{Batch: batch, Runs: runs, Warmup: warmup, Streams: streams}
	var step func(ctx context.Context, x []float32) error
	var flops float64 // per run, when known

	if o.gemm {
		// One m×n×k product per run, m = n = k = 8·--resolution (1024 by
		// default), spread over every core.
		n := 8 * res
		a, b, c := make([]float32, n*n), make([]float32, n*n), make([]float32, n*n)
		for i := range a {
			a[i], b[i] = float32(i%7)-3, float32(i%5)-2
		}
		r.Engine, r.Detail, r.Model = "gemm", nn.PureGo{}.Name(), fmt.Sprintf("%d×%d×%d product", n, n, n)
		r.Batch, r.Channels, r.Resolution = 1, 0, n
		batch = 1
		flops = 2 * float64(n) * float64(n) * float64(n)
		step = func(ctx context.Context, _ []float32) error {
			nn.PureGo{}.Sgemm(false, false, n, n, n, a, n, b, n, 0, c, n)
			return ctx.Err()
		}
	} else if o.native() {
		m, name, err := nativeBench(ctx, o.model.weights, o.arch, o.classes)
		if err != nil {
			return err
		}
		r.Engine, r.Detail, r.Model = "native", nn.Backend().Name(), name
		r.Channels, r.Resolution = 3, res
		step = func(ctx context.Context, x []float32) error {
			m.Forward(nn.FromData(x, batch, 3, res, res))
			return ctx.Err()
		}
		if doTrain {
			if step, err = trainStep(m, freeze, batch, res); err != nil {
				return err
			}
			r.Engine = "native-train"
			if freeze == train.PresetAll {
				flops = train.StepFlops(m.Config, res) * float64(batch)
			}
			r.Detail = fmt.Sprintf("training step, freeze %s; convolutions on go (%s), other products on %s", freeze, nn.KernelName(), nn.Backend().Name())
		}
	} else {
		opts := o.model.runtime.ForConcurrentRuns(streams, goruntime.NumCPU())
		p, err := runtime.Open(o.model.onnx, opts)
		if err != nil {
			return err
		}
		defer p.Close()
		info := p.Info()
		if len(info.Shape) != 4 {
			return fmt.Errorf("bench: model input %q has shape %v, want NCHW", info.Input, info.Shape)
		}
		r.Channels = 3
		if info.Shape[1] > 0 {
			r.Channels = int(info.Shape[1])
		}
		if channels != 0 {
			r.Channels = channels
		}
		r.Resolution = onnxResolution(o.resolutionGiven, info, res)
		shape := []int64{int64(batch), int64(r.Channels), int64(r.Resolution), int64(r.Resolution)}
		if err := p.CheckShape(shape); err != nil {
			return usageError{err}
		}
		v, _ := runtime.Version(opts)
		threads := "default threads"
		if opts.IntraThreads > 0 {
			threads = fmt.Sprintf("%d threads", opts.IntraThreads)
		}
		if streams > 1 {
			threads = fmt.Sprintf("%d streams × %s, %d session(s)", streams, threads, max(opts.Sessions, 1))
		}
		r.Engine, r.Detail, r.Model = "onnx", fmt.Sprintf("onnxruntime %s, %s, %s", v, info.Provider, threads), o.model.onnx
		step = func(ctx context.Context, x []float32) error {
			_, err := p.Run(ctx, x, shape)
			return err
		}
	}

	rng := rand.New(rand.NewPCG(1, 2))
	x := make([]float32, batch*r.Channels*r.Resolution*r.Resolution*min(r.Channels, 1))
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	fmt.Fprintf(stderr, "bench: %s %s, input %d×%d×%d×%d, %d warmup + %d runs\n",
		r.Engine, r.Model, batch, r.Channels, r.Resolution, r.Resolution, warmup, runs)
	for range warmup {
		if err := step(ctx, x); err != nil {
			return err
		}
	}
	if o.cpuprofile != "" {
		f, err := os.Create(o.cpuprofile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return err
		}
		defer f.Close()
		defer pprof.StopCPUProfile()
	}
	// Each stream times its own runs; latencies are pooled.
	lat := make([]float64, runs*streams)
	errs := make([]error, streams)
	cpu0, cpuOK := cputime.Process()
	start := time.Now()
	var wg sync.WaitGroup
	for s := range streams {
		wg.Go(func() {
			for i := range runs {
				t0 := time.Now()
				if err := step(ctx, x); err != nil {
					errs[s] = err
					return
				}
				lat[s*runs+i] = float64(time.Since(t0).Nanoseconds()) / 1e6
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	r.Seconds = time.Since(start).Seconds()
	total := runs * batch * streams
	r.Throughput = float64(total) / r.Seconds
	if cpu1, ok := cputime.Process(); ok && cpuOK {
		r.CPUMsPerImage = float64((cpu1 - cpu0).Microseconds()) / 1000 / float64(total)
		r.CoresBusy = (cpu1 - cpu0).Seconds() / r.Seconds
	}
	sort.Float64s(lat)
	r.BatchMs = pctls{percentile(lat, 0.5), percentile(lat, 0.1), percentile(lat, 0.9)}
	b := float64(batch)
	r.ImageMs = pctls{r.BatchMs.Median / b, r.BatchMs.P10 / b, r.BatchMs.P90 / b}
	ips := func(ms float64) float64 { return 1000 * b / ms }
	if flops > 0 {
		r.GFLOPs = flops / r.BatchMs.Median / 1e6
	}
	r.ImagesPerS = pctls{ips(r.BatchMs.Median), ips(r.BatchMs.P90), ips(r.BatchMs.P10)}

	out := stdout
	if o.json {
		return writeJSON(out, r)
	}
	var s strings.Builder
	fmt.Fprintf(&s, "engine:      %s (%s)\n", r.Engine, r.Detail)
	fmt.Fprintf(&s, "model:       %s\n", r.Model)
	fmt.Fprintf(&s, "input:       %d×%d×%d×%d\n", batch, r.Channels, r.Resolution, r.Resolution)
	fmt.Fprintf(&s, "runs:        %d (after %d warmup), %.2fs\n", runs, warmup, r.Seconds)
	fmt.Fprintf(&s, "batch:       %.2f ms median (p10 %.2f, p90 %.2f)\n", r.BatchMs.Median, r.BatchMs.P10, r.BatchMs.P90)
	fmt.Fprintf(&s, "per image:   %.2f ms median (p10 %.2f, p90 %.2f)\n", r.ImageMs.Median, r.ImageMs.P10, r.ImageMs.P90)
	if streams > 1 {
		fmt.Fprintf(&s, "throughput:  %.1f images/s (%d streams, all images over wall time); per stream %.1f images/s median\n", r.Throughput, streams, r.ImagesPerS.Median)
	} else {
		fmt.Fprintf(&s, "throughput:  %.1f images/s median (p10 %.1f, p90 %.1f)\n", r.ImagesPerS.Median, r.ImagesPerS.P10, r.ImagesPerS.P90)
	}
	if r.GFLOPs > 0 {
		fmt.Fprintf(&s, "work:        %.1f GFLOP/s of products (median run)\n", r.GFLOPs)
	}
	if r.CPUMsPerImage > 0 {
		fmt.Fprintf(&s, "cpu time:    %.2f ms/image (process user+system, all threads); %.2f cores busy\n", r.CPUMsPerImage, r.CoresBusy)
	}
	_, err := fmt.Fprint(out, s.String())
	return err
}

// onnxResolution is the input side bench feeds an ONNX model: --resolution
// when given, else the model's fixed input size, else its bitrun.resolution
// metadata (the rule predict, eval and serve follow), else def.
func onnxResolution(given bool, info runtime.Info, def int) int {
	if given {
		return def
	}
	if len(info.Shape) == 4 && info.Shape[2] > 0 {
		return int(info.Shape[2])
	}
	if v, err := strconv.Atoi(info.Metadata[meta.Resolution]); err == nil && v >= 1 && v <= maxResolution {
		return v
	}
	return def
}
