package train

import (
	"errors"
	"fmt"
	goruntime "runtime"

	"github.com/bitrun/bitrun/model"
	"github.com/bitrun/bitrun/nn"
)

// ErrShape is wrapped by errors about inputs or targets of the wrong shape.
var ErrShape = errors.New("train: bad input shape")

// Trainable selects the parameters (by official checkpoint name) that get
// gradients and updates; the others are frozen.
type Trainable func(name string) bool

// Freeze presets accepted by Preset.
const (
	PresetAll    = "all"     // every parameter
	PresetHead   = "head"    // the head's linear layer (kernel and bias)
	PresetHeadGN = "head+gn" // the pre-head GroupNorm affine and the head
)

// Preset returns the Trainable for a preset name: "all", "head" or "head+gn".
func Preset(name string) (Trainable, error) {
	switch name {
	case PresetAll, "":
		return func(string) bool { return true }, nil
	case PresetHead:
		return func(n string) bool { return n == model.HeadKernel || n == model.HeadBias }, nil
	case PresetHeadGN:
		return func(n string) bool {
			return n == model.HeadKernel || n == model.HeadBias || n == model.HeadGamma || n == model.HeadBeta
		}, nil
	}
	return nil, fmt.Errorf("train: unknown freeze preset %q (want %s, %s or %s)", name, PresetAll, PresetHead, PresetHeadGN)
}

// Net runs a BiT network forward and backward for training. It keeps what the
// backward needs from the last forward in an arena that is reused from call to
// call, and accumulates gradients (of the trainable parameters only) until
// ZeroGrad. Params are shared, not copied: an optimiser updates them in place
// between logical steps. The Net keeps each conv kernel standardised and
// packed while it knows the kernel unchanged (Step repacks what it updates;
// a frozen kernel is packed once), so a caller that changes parameters any
// other way (an optimiser over Grads, clipping, new weights) calls
// Invalidate before the next forward; ZeroGrad does it too unless the last
// update was Step's. A Net is not safe for concurrent use.
type Net struct {
	cfg       model.Config
	params    model.Params
	trainable Trainable

	arena nn.Arena
	pos   map[string]int // position of each parameter in cfg.Spec()
	first int            // position of the first trainable parameter
	specs []model.ParamSpec

	// Standardised kernels (checkpoint layout), packed for the products,
	// each in its own arena and kept while the Net knows its parameters
	// unchanged (packed): Step repacks what it updates while the new
	// values are in cache, a frozen kernel is packed once, and ZeroGrad
	// after any other update drops them all.
	kern    map[string]*nn.HWIOKernel
	karena  map[string]*nn.Arena
	packed  map[string]bool
	stepped bool                  // the last Step repacked the kernels it updated
	head    *nn.Tensor            // head kernel viewed as [C, classes]
	c       cache                 // activations of the last forward
	gacc    map[string]*nn.Tensor // gradient accumulators (conv: w.r.t. the standardised kernel)
	grad    model.Params          // finalised gradients, checkpoint layout
	seen    bool                  // accumulators hold a micro-batch
	conv    map[string]bool       // trainable conv kernels (gacc holds the standardised kernel's gradient)

	replicas []*Net // batch-parallel helpers (replica i+1), made on first use
}

type gnStats struct{ mean, inv []float32 }

type unitCache struct {
	x, pa, ya, pb, yb, pc, out *nn.Tensor
	sa, sb, sc                 gnStats
}

type cache struct {
	x, r, m   *nn.Tensor // input, root conv, padded and pooled
	units     [4][]unitCache
	h, hr     *nn.Tensor // trunk output, relu(gn(h))
	sh        gnStats
	f, logits *nn.Tensor
	n         int
}

// NewNet checks params against cfg and returns a Net training the parameters
// trainable selects (nil: all of them).
func NewNet(cfg model.Config, params model.Params, trainable Trainable) (*Net, error) {
	if err := model.Check(cfg, params); err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	if trainable == nil {
		trainable = func(string) bool { return true }
	}
	n := &Net{cfg: cfg, params: params, trainable: trainable, pos: map[string]int{},
		kern: map[string]*nn.HWIOKernel{}, karena: map[string]*nn.Arena{}, packed: map[string]bool{},
		gacc: map[string]*nn.Tensor{},
		grad: model.Params{}, conv: map[string]bool{}}
	n.specs = cfg.Spec()
	n.first = len(n.specs)
	for i, s := range n.specs {
		n.pos[s.Name] = i
		if trainable(s.Name) && i < n.first {
			n.first = i
		}
		if !trainable(s.Name) {
			continue
		}
		switch s.Kind {
		case model.KindConv:
			n.gacc[s.Name] = nn.New(s.Shape...)
			n.conv[s.Name] = true
		default:
			n.gacc[s.Name] = nn.New(s.Shape...)
		}
		n.grad[s.Name] = nn.New(s.Shape...)
	}
	for b := 0; b < 4; b++ {
		n.c.units[b] = make([]unitCache, cfg.Units[b])
	}
	return n, nil
}

// Config is the network's architecture.
func (n *Net) Config() model.Config { return n.cfg }

// Params are the weights the Net reads (shared with the caller: after
// changing them in place other than through Step, call Invalidate).
func (n *Net) Params() model.Params { return n.params }

// Invalidate drops every standardised and packed kernel: the next forward
// standardises and packs them from the current parameters. Call it after
// changing parameters other than through Step.
func (n *Net) Invalidate() {
	clear(n.packed)
	n.stepped = false
}

// Trainable reports whether the named parameter gets gradients.
func (n *Net) Trainable(name string) bool { _, ok := n.gacc[name]; return ok }

// ArenaBytes is the activation, scratch and packed-kernel memory the Net
// holds.
func (n *Net) ArenaBytes() int64 {
	b := n.arena.Bytes()
	for _, a := range n.karena {
		b += a.Bytes()
	}
	for _, r := range n.replicas {
		b += r.arena.Bytes()
	}
	return b
}

func (n *Net) checkInput(x *nn.Tensor) error {
	if len(x.Shape) != 4 || x.Shape[1] != 3 || x.Shape[0] < 1 || x.Shape[2] < 8 || x.Shape[3] < 8 {
		return fmt.Errorf("%w: input %v, want [N,3,H,W] with N >= 1 and H, W >= 8", ErrShape, x.Shape)
	}
	return nil
}

// Forward runs x [N,3,H,W] (pixels in [-1,1]) and returns the logits
// [N,classes], valid until the next call of any Net method. It keeps what a
// Backward needs.
func (n *Net) Forward(x *nn.Tensor) (*nn.Tensor, error) {
	if err := n.checkInput(x); err != nil {
		return nil, err
	}
	n.forward(x)
	return n.c.logits, nil
}

// prepare standardises and packs every kernel not already packed from its
// current values (shared by the replicas).
func (n *Net) prepare() {
	for _, s := range n.specs {
		if s.Kind == model.KindHead {
			k := n.params[s.Name]
			n.head = k.Reshape(k.Shape[2], k.Shape[3])
		}
	}
	n.eachConv(func(key string, stride, pad int) {
		if !n.packed[key] {
			n.pack(key, stride, pad)
		}
	})
}

// pack standardises kernel key and packs it into its own arena.
func (n *Net) pack(key string, stride, pad int) {
	n.kern[key] = nn.StandardizePrepareHWIO(n.params[key], stride, pad, n.packDx(key), n.kernArena(key))
	n.packed[key] = true
}

// kernArena is kernel key's arena, reset.
func (n *Net) kernArena(key string) *nn.Arena {
	a := n.karena[key]
	if a == nil {
		a = &nn.Arena{}
		n.karena[key] = a
	}
	a.Reset()
	return a
}

// packDx reports whether kernel key is packed for the input gradient too.
func (n *Net) packDx(key string) bool { return key != model.RootKernel && n.needDx(key) }

// eachConv calls f with every conv kernel's name, stride and padding, in
// the order of the forward.
func (n *Net) eachConv(f func(key string, stride, pad int)) {
	f(model.RootKernel, 2, 3)
	for b := 0; b < 4; b++ {
		for u := 0; u < n.cfg.Units[b]; u++ {
			stride := unitStride(b, u)
			f(model.ConvKey(b, u, "a"), 1, 0)
			f(model.ConvKey(b, u, "b"), stride, 1)
			f(model.ConvKey(b, u, "c"), 1, 0)
			if n.cfg.HasProj(b, u) {
				f(model.ConvKey(b, u, "a/proj"), stride, 0)
			}
		}
	}
}

func (n *Net) stats(batch int) gnStats {
	g := n.cfg.Groups
	return gnStats{n.arena.Get(batch * g).Data, n.arena.Get(batch * g).Data}
}

func (n *Net) forward(x *nn.Tensor) {
	n.arena.Reset()
	n.prepare()
	n.forwardPart(x)
}

// forwardPart runs x with the kernels already prepared (by this Net or, for
// a replica, shared from its parent).
func (n *Net) forwardPart(x *nn.Tensor) {
	a, cfg, p := &n.arena, n.cfg, n.params
	c := &n.c
	bs := x.Shape[0]
	c.n, c.x = bs, x
	oh, ow := nn.ConvOutSize(x.Shape[2], 7, 2, 3), nn.ConvOutSize(x.Shape[3], 7, 2, 3)
	c.r = a.Get(bs, cfg.RootWidth, oh, ow)
	nn.ConvHWIOInto(c.r, x, n.kern[model.RootKernel], 2, 3, a)
	c.m = a.Get(bs, cfg.RootWidth, nn.ConvOutSize(oh, 3, 2, 1), nn.ConvOutSize(ow, 3, 2, 1))
	nn.PadMaxPoolInto(c.m, c.r, 1, 3, 2)
	h := c.m
	for b := 0; b < 4; b++ {
		for u := 0; u < cfg.Units[b]; u++ {
			h = n.unitForward(h, b, u)
		}
	}
	c.h = h
	c.hr = a.Get(h.Shape...)
	c.sh = n.stats(bs)
	nn.GroupNormInto(c.hr, h, cfg.Groups, p[model.HeadGamma].Data, p[model.HeadBeta].Data, c.sh.mean, c.sh.inv, true)
	c.f = a.Get(bs, h.Shape[1])
	nn.GlobalAvgPoolInto(c.f, c.hr)
	c.logits = a.Get(bs, cfg.Classes)
	nn.LinearInto(c.logits, c.f, n.head, p[model.HeadBias].Data)
}

func unitStride(b, u int) int {
	if u == 0 {
		return model.BlockStride(b)
	}
	return 1
}

func (n *Net) unitForward(x *nn.Tensor, b, u int) *nn.Tensor {
	a, cfg, p := &n.arena, n.cfg, n.params
	uc := &n.c.units[b][u]
	bs, hgt, wid := x.Shape[0], x.Shape[2], x.Shape[3]
	out, mid := cfg.Widths[b], cfg.Widths[b]/4
	stride := unitStride(b, u)
	oh, ow := nn.ConvOutSize(hgt, 3, stride, 1), nn.ConvOutSize(wid, 3, stride, 1)
	gn := func(dst, src *nn.Tensor, part string, st *gnStats) {
		*st = n.stats(bs)
		nn.GroupNormInto(dst, src, cfg.Groups, p[model.GammaKey(b, u, part)].Data, p[model.BetaKey(b, u, part)].Data, st.mean, st.inv, true)
	}
	uc.x = x
	uc.pa = a.Get(x.Shape...)
	gn(uc.pa, x, "a", &uc.sa)
	uc.ya = a.Get(bs, mid, hgt, wid)
	nn.ConvHWIOInto(uc.ya, uc.pa, n.kern[model.ConvKey(b, u, "a")], 1, 0, a)
	uc.pb = a.Get(uc.ya.Shape...)
	gn(uc.pb, uc.ya, "b", &uc.sb)
	uc.yb = a.Get(bs, mid, oh, ow)
	nn.ConvHWIOInto(uc.yb, uc.pb, n.kern[model.ConvKey(b, u, "b")], stride, 1, a)
	uc.pc = a.Get(uc.yb.Shape...)
	gn(uc.pc, uc.yb, "c", &uc.sc)
	uc.out = a.Get(bs, out, oh, ow)
	nn.ConvHWIOInto(uc.out, uc.pc, n.kern[model.ConvKey(b, u, "c")], 1, 0, a)
	if cfg.HasProj(b, u) {
		m := a.Mark()
		sc := a.Get(bs, out, oh, ow)
		nn.ConvHWIOInto(sc, uc.pa, n.kern[model.ConvKey(b, u, "a/proj")], stride, 0, a)
		nn.AddInPlace(uc.out, sc)
		a.Release(m)
	} else {
		nn.AddInPlace(uc.out, x)
	}
	return uc.out
}

// ForwardBackward runs one micro-batch: x [N,3,H,W] and soft targets (N×classes
// values, each row a distribution; see OneHot and MixTargets). It adds the
// gradient of scale × (summed cross-entropy) to the accumulators and returns
// the summed loss and the logits (valid until the next call). For a mean loss
// over a logical batch of B examples split into micro-batches, pass scale 1/B
// to every call.
func (n *Net) ForwardBackward(x *nn.Tensor, targets []float32, scale float32) (float64, *nn.Tensor, error) {
	if err := n.checkInput(x); err != nil {
		return 0, nil, err
	}
	if len(targets) != x.Shape[0]*n.cfg.Classes {
		return 0, nil, fmt.Errorf("%w: %d target values for %d examples of %d classes", ErrShape, len(targets), x.Shape[0], n.cfg.Classes)
	}
	n.arena.Reset()
	n.prepare()
	parts := n.parts(x.Shape[0])
	if parts == 1 {
		loss := n.stepPart(x, targets, scale)
		return loss, n.c.logits, nil
	}
	// Batch-parallel: each replica runs its share of the images start to
	// finish on one core (its kernels run inline: every helper is taken by
	// this loop), so no core waits on another's small parallel regions.
	bs, chw, k := x.Shape[0], x.Len()/x.Shape[0], n.cfg.Classes
	n.setReplicas(parts)
	losses := make([]float64, parts)
	nn.ParallelFor(parts, func(i int) {
		lo, hi := i*bs/parts, (i+1)*bs/parts
		r := n.replica(i)
		xi := nn.FromData(x.Data[lo*chw:hi*chw], hi-lo, x.Shape[1], x.Shape[2], x.Shape[3])
		losses[i] = r.stepPart(xi, targets[lo*k:hi*k], scale)
	})
	logits := n.arena.Get(bs, k)
	var loss float64
	for i := range parts {
		lo := i * bs / parts
		r := n.replica(i)
		copy(logits.Data[lo*k:], r.c.logits.Data)
		loss += losses[i]
	}
	n.c.logits = logits
	return loss, logits, nil
}

// stepPart runs the forward and backward of x (kernels prepared) and adds
// its gradients to this Net's accumulators.
func (n *Net) stepPart(x *nn.Tensor, targets []float32, scale float32) float64 {
	n.forwardPart(x)
	c := &n.c
	dl := n.arena.Get(c.logits.Shape...)
	loss := nn.SoftmaxCrossEntropy(c.logits, targets, dl, scale)
	n.backward(dl)
	n.seen = true
	return loss
}

// Bounds of the batch-parallel split: each replica past the first holds its
// own gradient accumulators, a copy of the trainable parameters' size, so
// their total is capped too (a large model trains on one replica, its
// kernels split over the cores instead).
const (
	maxReplicas     = 4
	maxReplicaBytes = 1 << 30 // extra accumulator memory
)

// parts is the number of replicas a batch of bs images is split over: one
// per core, at most maxReplicas, bs, and as many as maxReplicaBytes allows.
// The split depends on the batch, the model and GOMAXPROCS only, so a step
// gives the same bits on every run.
func (n *Net) parts(bs int) int {
	var acc int64
	for _, t := range n.gacc {
		acc += int64(t.Len()) * 4
	}
	byMem := maxReplicas
	if acc > 0 {
		byMem = int(min(int64(maxReplicas), 1+maxReplicaBytes/acc))
	}
	return max(1, min(bs, byMem, goruntime.GOMAXPROCS(0)))
}

// setReplicas makes sure replicas 1..parts-1 exist and reads the kernels
// this step prepared into them. Called before the parallel loop: replicas
// are made and shared state is set on one goroutine only.
func (n *Net) setReplicas(parts int) {
	for len(n.replicas) < parts-1 {
		r := &Net{cfg: n.cfg, params: n.params, trainable: n.trainable, pos: n.pos, first: n.first,
			specs: n.specs, gacc: map[string]*nn.Tensor{}, conv: n.conv}
		for name, t := range n.gacc {
			r.gacc[name] = nn.New(t.Shape...)
		}
		for b := 0; b < 4; b++ {
			r.c.units[b] = make([]unitCache, n.cfg.Units[b])
		}
		n.replicas = append(n.replicas, r)
	}
	for _, r := range n.replicas[:parts-1] {
		r.kern, r.head = n.kern, n.head
		r.arena.Reset()
	}
}

// replica returns replica i of the current step (0 is n itself): a Net over
// the same parameters with its own arena, activations and gradient
// accumulators, reading the kernels n prepared.
func (n *Net) replica(i int) *Net {
	if i == 0 {
		return n
	}
	return n.replicas[i-1]
}

// needDx reports whether the gradient must flow past the named parameter
// (into the input of the op or stage that reads it first): some trainable
// parameter comes before it (the spec lists parameters in forward order).
func (n *Net) needDx(param string) bool { return n.first < n.pos[param] }

func (n *Net) acc(name string) *nn.Tensor { return n.gacc[name] } // nil when frozen

func (n *Net) accVec(name string) []float32 {
	if t := n.gacc[name]; t != nil {
		return t.Data
	}
	return nil
}

func (n *Net) backward(dlogits *nn.Tensor) {
	a, cfg, p, c := &n.arena, n.cfg, n.params, &n.c
	var dhw *nn.Tensor
	if hk := n.acc(model.HeadKernel); hk != nil {
		dhw = hk.Reshape(hk.Shape[2], hk.Shape[3])
	}
	var df *nn.Tensor
	if n.needDx(model.HeadKernel) {
		df = a.Get(c.f.Shape...)
	}
	nn.LinearBackward(c.f, n.head, dlogits, df, dhw, n.accVec(model.HeadBias), n.seen, a)
	if df == nil {
		return
	}
	dhr := a.Get(c.hr.Shape...)
	nn.GlobalAvgPoolBackward(df, dhr)
	var dh *nn.Tensor
	if n.needDx(model.HeadGamma) {
		dh = a.Get(c.h.Shape...)
	}
	nn.GroupNormBackward(c.h, c.hr, cfg.Groups, p[model.HeadGamma].Data, c.sh.mean, c.sh.inv, dhr, dh,
		n.accVec(model.HeadGamma), n.accVec(model.HeadBeta), n.seen, a)
	d := dh
	for b := 3; b >= 0 && d != nil; b-- {
		for u := cfg.Units[b] - 1; u >= 0 && d != nil; u-- {
			d = n.unitBackward(d, b, u)
		}
	}
	if d == nil || n.acc(model.RootKernel) == nil {
		return
	}
	dr := a.Get(c.r.Shape...)
	nn.PadMaxPoolBackward(c.r, c.m, d, 1, 3, 2, dr)
	nn.ConvHWIOBackward(c.x, n.kern[model.RootKernel], dr, 2, 3, nil, n.acc(model.RootKernel), n.seen, a)
}

func (n *Net) unitBackward(dout *nn.Tensor, b, u int) *nn.Tensor {
	a, cfg, p := &n.arena, n.cfg, n.params
	uc := &n.c.units[b][u]
	stride := unitStride(b, u)
	var dx *nn.Tensor
	if n.needDx(model.GammaKey(b, u, "a")) {
		dx = a.Get(uc.x.Shape...)
	}
	m := a.Mark()
	defer a.Release(m)
	// get returns a gradient buffer shaped like t when the gradient must flow
	// past the named parameter, else nil.
	get := func(t *nn.Tensor, key string) *nn.Tensor {
		if !n.needDx(key) {
			return nil
		}
		return a.Get(t.Shape...)
	}
	gnBack := func(x, y *nn.Tensor, part string, st gnStats, dy, dxx *nn.Tensor) {
		nn.GroupNormBackward(x, y, cfg.Groups, p[model.GammaKey(b, u, part)].Data, st.mean, st.inv, dy, dxx,
			n.accVec(model.GammaKey(b, u, part)), n.accVec(model.BetaKey(b, u, part)), n.seen, a)
	}
	conv := func(x *nn.Tensor, part string, dy *nn.Tensor, stride, pad int, dxx *nn.Tensor) {
		key := model.ConvKey(b, u, part)
		nn.ConvHWIOBackward(x, n.kern[key], dy, stride, pad, dxx, n.acc(key), n.seen, a)
	}
	proj := cfg.HasProj(b, u)
	kc := model.ConvKey(b, u, "c")
	dpc := get(uc.pc, kc)
	conv(uc.pc, "c", dout, 1, 0, dpc)
	var dps *nn.Tensor
	if proj {
		dps = get(uc.pa, model.ConvKey(b, u, "a/proj"))
		conv(uc.pa, "a/proj", dout, stride, 0, dps)
	}
	if dpc == nil {
		return dx // nothing before conv c trains (dx is nil too)
	}
	dyb := get(uc.yb, model.GammaKey(b, u, "c"))
	gnBack(uc.yb, uc.pc, "c", uc.sc, dpc, dyb)
	if dyb == nil {
		return dx
	}
	dpb := get(uc.pb, model.ConvKey(b, u, "b"))
	conv(uc.pb, "b", dyb, stride, 1, dpb)
	if dpb == nil {
		return dx
	}
	dya := get(uc.ya, model.GammaKey(b, u, "b"))
	gnBack(uc.ya, uc.pb, "b", uc.sb, dpb, dya)
	if dya == nil {
		return dx
	}
	dpa := get(uc.pa, model.ConvKey(b, u, "a"))
	conv(uc.pa, "a", dya, 1, 0, dpa)
	if dpa == nil {
		return dx
	}
	if dps != nil {
		nn.AddInPlace(dpa, dps)
	}
	gnBack(uc.x, uc.pa, "a", uc.sa, dpa, dx)
	if dx != nil && !proj {
		nn.AddInPlace(dx, dout)
	}
	return dx
}

// ZeroGrad clears the gradient accumulators. (They are not written: the
// next micro-batch's backward overwrites them instead of adding, as every
// backward writes the gradient of every trainable parameter.) Unless the
// last update was Step's, it also drops the packed kernels (Invalidate):
// an optimiser over Grads may have changed the parameters. After a Step,
// a change of the parameters made before ZeroGrad needs Invalidate.
func (n *Net) ZeroGrad() {
	if !n.stepped {
		n.Invalidate()
	}
	n.stepped = false
	n.seen = false
	for _, r := range n.replicas {
		r.seen = false
	}
}

// gatherReplicas adds the replicas' accumulated gradients to n's, in replica
// order, and clears theirs.
func (n *Net) gatherReplicas() {
	for _, r := range n.replicas {
		if !r.seen {
			continue
		}
		for name, t := range r.gacc {
			nn.AddInPlace(n.gacc[name], t)
		}
		r.seen = false // its next micro-batch overwrites what was added here
		n.seen = true
	}
}

// Grads returns the accumulated gradients of the trainable parameters in the
// checkpoint layout, keyed by the official names. Call it after the last
// ForwardBackward of a logical step and before the parameters change (the
// weight-standardisation backward uses the kernels of the last forward). The
// returned map and tensors are reused by the next call.
func (n *Net) Grads() model.Params {
	n.gatherReplicas()
	for name, gt := range n.grad {
		src := n.gacc[name]
		if !n.seen {
			clear(gt.Data)
			continue
		}
		if n.conv[name] {
			k := n.kern[name]
			nn.StandardizeBackwardHWIO(k.W, k.WS, src, gt, false)
			continue
		}
		copy(gt.Data, src.Data)
	}
	return n.grad
}

// Step updates the parameters with opt from the gradients accumulated
// since ZeroGrad, with learning rate lr: to the bit what
// opt.Step(n.Params(), n.Grads(), lr) does, but each trainable conv
// kernel's standardisation backward, the gather of the batch-parallel
// replicas' gradients and its SGD update run as two fused passes over the
// kernel (nn.StandardizedSGD) instead of six. Call it after the last
// ForwardBackward of a logical step and before the parameters change; the
// accumulators are left as they are (ZeroGrad starts the next step).
func (n *Net) Step(opt *SGD, lr float64) error {
	var from []*Net // the replicas holding gradients, in order
	for i := 0; i <= len(n.replicas); i++ {
		if r := n.replica(i); r.seen {
			from = append(from, r)
		}
	}
	if len(from) > 2 {
		// The fused update reads at most two accumulators: more replicas
		// (machines with more cores) are first added into this Net's, in
		// the order Grads adds them.
		n.gatherReplicas()
		from = from[:1]
	}
	if len(from) == 0 || from[0] != n {
		// Every kernel may move (momentum, weight decay): none stays packed.
		n.Invalidate()
		return opt.Step(n.params, n.Grads(), lr)
	}
	// The other parameters (GroupNorm, head: small) go through opt.Step
	// with their gathered gradients; the kernels' state is checked before
	// anything is written.
	rest := model.Params{}
	for name, g := range n.grad {
		if n.conv[name] {
			continue
		}
		copy(g.Data, n.gacc[name].Data)
		if len(from) == 2 {
			nn.AddInPlace(g, from[1].gacc[name])
		}
		rest[name] = g
	}
	type kernelStep struct {
		name         string
		stride, pad  int
		w, v, g0, g1 *nn.Tensor
		s            nn.WS
		mu, wd       float32
	}
	var steps []kernelStep // the trainable kernels, in the forward's order
	var err error
	n.eachConv(func(name string, stride, pad int) {
		if !n.conv[name] || err != nil {
			return
		}
		w := n.params[name]
		var k kernelStep
		if k.v, k.mu, k.wd, err = opt.state(name, w); err != nil {
			return
		}
		k.name, k.stride, k.pad, k.w, k.g0, k.s = name, stride, pad, w, n.gacc[name], n.kern[name].WS
		if len(from) == 2 {
			k.g1 = from[1].gacc[name]
		}
		steps = append(steps, k)
	})
	if err != nil {
		return err
	}
	n.stepped = false
	if err := opt.Step(n.params, rest, lr); err != nil {
		return err
	}
	// Each kernel is standardised and packed for the next forward with its
	// update: the new moments are taken while the updated rows are in
	// cache (the next forward then reads the packing only); the others
	// stay packed.
	for _, k := range steps {
		// The arena holds k.s, which the update reads before anything is
		// taken from it.
		n.kern[k.name] = nn.StandardizedSGDPrepare(k.w, k.v, k.s, k.g0, k.g1, k.mu, float32(lr), k.wd,
			k.stride, k.pad, n.packDx(k.name), n.kernArena(k.name))
		n.packed[k.name] = true
	}
	n.stepped = true
	return nil
}

// OneHot writes one-hot targets for labels into dst (len(labels)×classes).
// A label outside [0, classes) returns an error wrapping nn.ErrLabel.
func OneHot(labels []int, classes int, dst []float32) error {
	if len(dst) != len(labels)*classes {
		return fmt.Errorf("%w: %d target values for %d labels of %d classes", ErrShape, len(dst), len(labels), classes)
	}
	clear(dst)
	for i, l := range labels {
		if l < 0 || l >= classes {
			return fmt.Errorf("train: %w: example %d has label %d, want [0, %d)", nn.ErrLabel, i, l, classes)
		}
		dst[i*classes+l] = 1
	}
	return nil
}
