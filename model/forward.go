package model

import (
	"fmt"
	goruntime "runtime"
	"sync"

	"github.com/bitrun/bitrun/nn"
)

// Model is a BiT network ready for inference with the native engine. It is
// safe for concurrent Forward calls; call Refresh after changing Params.
type Model struct {
	Config Config
	Params Params

	once    sync.Once
	kernels map[string]*nn.ConvKernel // standardised OIHW kernels by checkpoint key
	head    *nn.Tensor                // head kernel as [C, classes]
}

// New checks params against cfg and returns a model.
func New(cfg Config, params Params) (*Model, error) {
	if err := Check(cfg, params); err != nil {
		return nil, err
	}
	return &Model{Config: cfg, Params: params}, nil
}

// Check verifies that cfg is valid (Config.Validate) and that params holds
// exactly the keys and shapes it needs. The error names every missing,
// unexpected and mis-shaped key.
func Check(cfg Config, params Params) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	var missing, shape []string
	want := map[string]bool{}
	for _, s := range cfg.Spec() {
		want[s.Name] = true
		t, ok := params[s.Name]
		if !ok {
			missing = append(missing, s.Name)
			continue
		}
		if !nn.SameShape(t.Shape, s.Shape) {
			shape = append(shape, fmt.Sprintf("%s: want %v, got %v", s.Name, s.Shape, t.Shape))
		}
	}
	var extra []string
	for _, k := range params.Names() {
		if !want[k] {
			extra = append(extra, k)
		}
	}
	if len(missing)+len(shape)+len(extra) == 0 {
		return nil
	}
	return &MismatchError{Arch: cfg.Name, Missing: missing, Unexpected: extra, Shape: shape}
}

// MismatchError lists how a set of weights differs from an architecture.
type MismatchError struct {
	Arch       string
	Missing    []string
	Unexpected []string
	Shape      []string
}

func (e *MismatchError) Error() string {
	msg := fmt.Sprintf("model: weights do not match %s:", e.Arch)
	list := func(what string, keys []string) {
		if len(keys) == 0 {
			return
		}
		const show = 8
		msg += fmt.Sprintf(" %d %s", len(keys), what)
		for i, k := range keys {
			if i == show {
				msg += fmt.Sprintf(" (and %d more)", len(keys)-show)
				break
			}
			sep := ","
			if i == 0 {
				sep = " ["
			}
			msg += sep + " " + k
		}
		msg += " ];"
	}
	list("missing", e.Missing)
	list("unexpected", e.Unexpected)
	list("mis-shaped", e.Shape)
	return msg
}

// Refresh drops the kernels prepared from Params so the next Forward re-reads
// them. Call it after modifying Params in place.
func (m *Model) Refresh() {
	m.once = sync.Once{}
	m.kernels = nil
	m.head = nil
}

func (m *Model) prepare() {
	m.once.Do(func() {
		m.kernels = map[string]*nn.ConvKernel{}
		for _, s := range m.Config.Spec() {
			switch s.Kind {
			case KindConv:
				m.kernels[s.Name] = nn.NewConvKernel(nn.StandardizeWeight(nn.HWIOToOIHW(m.Params[s.Name])))
			case KindHead:
				k := m.Params[s.Name]
				m.head = k.Reshape(k.Shape[2], k.Shape[3])
			}
		}
	})
}

// workspace is one Forward's scratch: an arena for the intermediates of a
// unit (reset after each) and two arenas the unit outputs alternate
// between. Workspaces are kept for reuse, so a model serving batch after
// batch neither allocates nor clears activation memory per call.
type workspace struct {
	a  nn.Arena
	io [2]nn.Arena
}

var workspaces struct {
	sync.Mutex
	free []*workspace
}

func getWorkspace() *workspace {
	workspaces.Lock()
	defer workspaces.Unlock()
	if n := len(workspaces.free); n > 0 {
		w := workspaces.free[n-1]
		workspaces.free = workspaces.free[:n-1]
		return w
	}
	return &workspace{}
}

// putWorkspace keeps at most one workspace per core.
func putWorkspace(w *workspace) {
	workspaces.Lock()
	defer workspaces.Unlock()
	if len(workspaces.free) < goruntime.GOMAXPROCS(0) {
		workspaces.free = append(workspaces.free, w)
	}
}

// out returns unit output buffer i%2 with the given shape.
func (w *workspace) out(i int, shape ...int) *nn.Tensor {
	io := &w.io[i%2]
	io.Reset()
	return io.Get(shape...)
}

// Forward runs a batch x [N,3,H,W] (pixels scaled to [-1,1]) and returns the
// logits [N,classes] and the pre-logit features [N,FeatureDim].
func (m *Model) Forward(x *nn.Tensor) (logits, features *nn.Tensor) {
	ws := getWorkspace()
	defer putWorkspace(ws)
	h := m.trunk(x, ws)
	p, a := m.Params, &ws.a
	a.Reset()
	hr := a.Get(h.Shape...)
	m.groupNorm(hr, h, p[HeadGamma].Data, p[HeadBeta].Data, a)
	features = nn.GlobalAvgPool(hr)
	logits = nn.Linear(features, m.head, p[HeadBias].Data)
	return logits, features
}

// Trunk runs a batch x [N,3,H,W] through the root and every unit and
// returns the activations that enter the pre-head GroupNorm, [N,C,h,w] (a
// new tensor): what a head-only fine-tuning caches.
func (m *Model) Trunk(x *nn.Tensor) *nn.Tensor {
	ws := getWorkspace()
	defer putWorkspace(ws)
	return m.trunk(x, ws).Clone()
}

// trunk is Trunk with the result in ws.
func (m *Model) trunk(x *nn.Tensor, ws *workspace) *nn.Tensor {
	m.prepare()
	cfg := m.Config
	a := &ws.a
	a.Reset()
	n := x.Shape[0]
	oh, ow := nn.ConvOutSize(x.Shape[2], 7, 2, 3), nn.ConvOutSize(x.Shape[3], 7, 2, 3)
	r := a.Get(n, cfg.RootWidth, oh, ow)
	nn.ConvKernelInto(r, x, m.kernels[RootKernel], 2, 3, a)
	h := ws.out(0, n, cfg.RootWidth, nn.ConvOutSize(oh, 3, 2, 1), nn.ConvOutSize(ow, 3, 2, 1))
	nn.PadMaxPoolInto(h, r, 1, 3, 2) // zero pad 1, then 3x3/2 max pool, no padded copy
	i := 0
	for b := 0; b < 4; b++ {
		for u := 0; u < cfg.Units[b]; u++ {
			i++
			a.Reset()
			h = m.unit(ws.out(i, m.unitShape(h, b, u)...), h, b, u, a)
		}
	}
	return h
}

// unitShape is the output shape of unit u of block b for input x.
func (m *Model) unitShape(x *nn.Tensor, b, u int) []int {
	stride := 1
	if u == 0 {
		stride = BlockStride(b)
	}
	return []int{x.Shape[0], m.Config.Widths[b], nn.ConvOutSize(x.Shape[2], 3, stride, 1), nn.ConvOutSize(x.Shape[3], 3, stride, 1)}
}

// groupNorm writes ReLU(GroupNorm(x)) into dst (statistics scratch from a).
func (m *Model) groupNorm(dst, x *nn.Tensor, gamma, beta []float32, a *nn.Arena) {
	g := m.Config.Groups
	st := a.Get(2, x.Shape[0]*g)
	nn.GroupNormInto(dst, x, g, gamma, beta, st.Data[:x.Shape[0]*g], st.Data[x.Shape[0]*g:], true)
}

// unit writes the output of unit u of block b for input x into out and
// returns it; intermediates come from a.
func (m *Model) unit(out, x *nn.Tensor, b, u int, a *nn.Arena) *nn.Tensor {
	cfg, p := m.Config, m.Params
	stride := 1
	if u == 0 {
		stride = BlockStride(b)
	}
	gn := func(t *nn.Tensor, part string) *nn.Tensor {
		dst := a.Get(t.Shape...)
		m.groupNorm(dst, t, p[GammaKey(b, u, part)].Data, p[BetaKey(b, u, part)].Data, a)
		return dst
	}
	conv := func(dst, t *nn.Tensor, part string, stride, pad int) *nn.Tensor {
		nn.ConvKernelInto(dst, t, m.kernels[ConvKey(b, u, part)], stride, pad, a)
		return dst
	}
	n, mid := x.Shape[0], cfg.Widths[b]/4
	pre := gn(x, "a")
	y := conv(a.Get(n, mid, x.Shape[2], x.Shape[3]), pre, "a", 1, 0)
	y = conv(a.Get(n, mid, out.Shape[2], out.Shape[3]), gn(y, "b"), "b", stride, 1)
	conv(out, gn(y, "c"), "c", 1, 0)
	if cfg.HasProj(b, u) {
		return nn.AddInPlace(out, conv(a.Get(out.Shape...), pre, "a/proj", stride, 0))
	}
	return nn.AddInPlace(out, x)
}
