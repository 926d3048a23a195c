package finetune

import (
	"context"
	"errors"
	"fmt"
	"image"
	"math"
	"math/rand/v2"

	"github.com/bitrun/bitrun/data"
	"github.com/bitrun/bitrun/model"
	"github.com/bitrun/bitrun/nn"
	"github.com/bitrun/bitrun/train"
)

// Seeds of the pure functions of (seed, position) behind head training.
const (
	saltView  = 0x510e527fade682d1 // augmentation of cached view rows
	saltOrder = 0x9b05688c2b3e6c1f // row order
	saltDraw  = 0x1f83d9abfb41bd6b // draws with replacement
	saltMix   = 0x5be0cd19137e2179 // MixUp lambda and partners
	saltAdapt = 0x428a2f98d728ae22 // adaptation subset
)

// headNames are the parameters head training updates: the pre-head
// GroupNorm affine and the linear head.
var headNames = []string{model.HeadGamma, model.HeadBeta, model.HeadKernel, model.HeadBias}

// actCache holds trunk activations (the input of the pre-head GroupNorm) of
// cached rows: V views of each training image, row v*N+i for view v of image
// i.
type actCache struct {
	data   []float32
	labels []int
	images int    // N
	shape  [3]int // C, h, w
	per    int    // C*h*w
}

// cacheSpec says how the cached rows are preprocessed.
type cacheSpec struct {
	views      int
	resize     int // train: resize before the random crop
	res        int // crop (train) or eval size
	evalWay    bool
	flip       bool
	seed       uint64
	maxBytes   int64
	chunk      int
	progress   func(done, total int)
	imagesDone func(n int)
}

// buildCache runs the trunk over spec.views preprocessed versions of every
// image of ds: with evalWay the BiT eval preprocessing (square resize to res),
// else the HyperRule train augmentation (resize, random crop, random flip
// when spec.flip) drawn from (seed, row).
func buildCache(ctx context.Context, tr trunk, ds data.Dataset, spec cacheSpec) (*actCache, error) {
	n := ds.Len()
	if n == 0 {
		return nil, errors.New("finetune: training set is empty")
	}
	rows := spec.views * n
	chunk := spec.chunk
	if chunk <= 0 {
		chunk = 64
	}
	in := 3 * spec.res * spec.res
	buf := make([]float32, chunk*in)
	c := &actCache{labels: make([]int, rows), images: n}
	for r := 0; r < rows; r++ {
		c.labels[r] = ds.Label(r % n)
	}
	for r0 := 0; r0 < rows; r0 += chunk {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("finetune: caching trunk activations: %w", err)
		}
		bn := min(chunk, rows-r0)
		errs := make([]error, bn)
		nn.ParallelFor(bn, func(j int) {
			r := r0 + j
			img, err := ds.Image(r % n)
			if err != nil {
				errs[j] = fmt.Errorf("finetune: example %d: %w", r%n, err)
				return
			}
			dst := buf[j*in : (j+1)*in]
			if spec.evalWay {
				data.EvalTensor(img, spec.res, 3, data.BiTNorm, dst)
				return
			}
			augmentView(img, spec.resize, spec.res, spec.flip, spec.seed, uint64(r), dst)
		})
		if err := errors.Join(errs...); err != nil {
			return nil, err
		}
		out, shape, err := tr.Run(ctx, buf[:bn*in], bn, spec.res)
		if err != nil {
			return nil, err
		}
		if c.data == nil {
			c.shape, c.per = shape, shape[0]*shape[1]*shape[2]
			bytes := int64(rows) * int64(c.per) * 4
			if spec.maxBytes > 0 && bytes > spec.maxBytes {
				return nil, fmt.Errorf("%w: %d rows of %dx%dx%d activations need %d MiB, limit %d MiB (fewer views or a lower resolution)",
					ErrCacheTooLarge, rows, shape[0], shape[1], shape[2], bytes>>20, spec.maxBytes>>20)
			}
			c.data = make([]float32, rows*c.per)
		}
		if shape != c.shape || len(out) != bn*c.per {
			return nil, fmt.Errorf("finetune: trunk output changed shape: %v, then %v", c.shape, shape)
		}
		copy(c.data[r0*c.per:], out)
		if spec.progress != nil {
			spec.progress(r0+bn, rows)
		}
	}
	return c, nil
}

// augmentView is the HyperRule train preprocessing of one cached row:
// data.TrainTensor (resize, random crop, random flip) with an rng that is a
// pure function of (seed, row). Without flip a drawn mirror is undone.
func augmentView(img image.Image, resize, res int, flip bool, seed, row uint64, dst []float32) {
	rng := rand.New(rand.NewPCG(seed^saltView, row))
	if flip {
		data.TrainTensor(img, resize, res, 3, data.BiTNorm, rng, dst)
		return
	}
	// TrainTensor draws x, y, then the flip from rng: replay the draws on a
	// twin to know whether it mirrored.
	twin := rand.New(rand.NewPCG(seed^saltView, row))
	twin.IntN(resize - res + 1)
	twin.IntN(resize - res + 1)
	mirrored := twin.IntN(2) == 1
	data.TrainTensor(img, resize, res, 3, data.BiTNorm, rng, dst)
	if mirrored {
		for y := 0; y < 3*res; y++ {
			line := dst[y*res : (y+1)*res]
			for i, j := 0, res-1; i < j; i, j = i+1, j-1 {
				line[i], line[j] = line[j], line[i]
			}
		}
	}
}

// headTrainer trains the pre-head GroupNorm affine and the linear head on
// cached trunk activations: relu(GN(h)) -> global average pool -> linear ->
// softmax cross-entropy, the exact tail of the BiT forward.
type headTrainer struct {
	cfg    model.Config
	params model.Params // shared: only headNames are read and updated
	cache  *actCache
	batch  int
	mixup  float64
	repl   bool
	seed   uint64
	sched  train.Schedule
	sgd    *train.SGD

	arena nn.Arena
	grads model.Params
	perm  []int
	permE int
}

func newHeadTrainer(cfg model.Config, params model.Params, c *actCache, batch int, mixup float64, repl bool, seed uint64, sched train.Schedule, momentum float64) *headTrainer {
	t := &headTrainer{cfg: cfg, params: params, cache: c, batch: batch, mixup: mixup, repl: repl, seed: seed,
		sched: sched, sgd: &train.SGD{Momentum: momentum}, grads: model.Params{}, permE: -1}
	for _, name := range headNames {
		t.grads[name] = nn.New(params[name].Shape...)
	}
	return t
}

// row is the cached row at global sample position pos: a pure function of
// (seed, pos).
func (t *headTrainer) row(pos int) int {
	rows := len(t.cache.labels)
	if t.repl {
		return rand.New(rand.NewPCG(t.seed^saltDraw, uint64(pos))).IntN(rows)
	}
	e := pos / rows
	if e != t.permE {
		t.perm = data.Shuffled(rows, t.seed^saltOrder+uint64(e)*0x9e3779b97f4a7c15)
		t.permE = e
	}
	return t.perm[pos%rows]
}

// step runs one SGD step (0-based s) and returns the mean loss and the
// batch top-1 against the first label of each (possibly mixed) example.
func (t *headTrainer) step(s int) (loss, acc, lr float64, err error) {
	c, b, k := t.cache, t.batch, t.cfg.Classes
	a := &t.arena
	a.Reset()
	x := a.Get(b, c.shape[0], c.shape[1], c.shape[2])
	labels := make([]int, b)
	for j := 0; j < b; j++ {
		r := t.row(s*b + j)
		copy(x.Data[j*c.per:(j+1)*c.per], c.data[r*c.per:(r+1)*c.per])
		labels[j] = c.labels[r]
	}
	targets := make([]float32, b*k)
	if err := train.OneHot(labels, k, targets); err != nil {
		return 0, 0, 0, err
	}
	if t.mixup > 0 {
		// MixUp on the cached activations (the pre-head GroupNorm input), not
		// on pixels: see the package documentation.
		rng := rand.New(rand.NewPCG(t.seed^saltMix, uint64(s)))
		lam := float32(train.Beta(rng, t.mixup))
		partner := rng.Perm(b)
		if err := train.MixUp(x, labels, partner, k, lam, targets, a.Get(x.Shape...).Data); err != nil {
			return 0, 0, 0, err
		}
		// Batch accuracy against each mixed example's dominant label.
		labels = train.DominantLabels(labels, partner, lam, make([]int, b))
	}
	loss, correct, err := t.gradients(x, targets, labels)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("%w at step %d", err, s)
	}
	lr = t.sched(s)
	if err := t.sgd.Step(t.params, t.grads, lr); err != nil {
		return 0, 0, 0, err
	}
	return loss, float64(correct) / float64(b), lr, nil
}

// gradients runs the head forward on activations x [B,C,h,w] and the
// backward of the mean cross-entropy against targets into t.grads. It
// returns the mean loss and how many rows' top-1 equals labels.
func (t *headTrainer) gradients(x *nn.Tensor, targets []float32, labels []int) (float64, int, error) {
	a, p := &t.arena, t.params
	b, C, k, g := x.Shape[0], x.Shape[1], t.cfg.Classes, t.cfg.Groups
	y := a.Get(x.Shape...)
	mean, inv := a.Get(b*g).Data, a.Get(b*g).Data
	nn.GroupNormInto(y, x, g, p[model.HeadGamma].Data, p[model.HeadBeta].Data, mean, inv, true)
	f := a.Get(b, C)
	nn.GlobalAvgPoolInto(f, y)
	w := p[model.HeadKernel].Reshape(C, k)
	logits := a.Get(b, k)
	nn.LinearInto(logits, f, w, p[model.HeadBias].Data)
	dlog := a.Get(b, k)
	loss := nn.SoftmaxCrossEntropy(logits, targets, dlog, 1/float32(b)) / float64(b)
	if math.IsNaN(loss) || math.IsInf(loss, 0) {
		return 0, 0, fmt.Errorf("finetune: %w: loss %g (lower the learning rate)", ErrDiverged, loss)
	}
	correct := 0
	for j, pj := range nn.Argmax(logits, nil) {
		if pj == labels[j] {
			correct++
		}
	}
	df := a.Get(b, C)
	nn.LinearBackward(f, w, dlog, df, t.grads[model.HeadKernel].Reshape(C, k), t.grads[model.HeadBias].Data, false, a)
	dy := a.Get(x.Shape...)
	nn.GlobalAvgPoolBackward(df, dy)
	dx := a.Get(x.Shape...)
	nn.GroupNormBackward(x, y, g, p[model.HeadGamma].Data, mean, inv, dy, dx,
		t.grads[model.HeadGamma].Data, t.grads[model.HeadBeta].Data, false, a)
	return loss, correct, nil
}
