package model

import (
	"fmt"
	"sync"

	"github.com/bitrun/bitrun/nn"
)

// Model is a BiT network ready for inference with the native engine. It is
// safe for concurrent Forward calls; call Refresh after changing Params.
type Model struct {
	Config Config
	Params Params

	once    sync.Once
	kernels map[string]*nn.Tensor // standardised OIHW kernels by checkpoint key
	head    *nn.Tensor            // head kernel as [C, classes]
}

// New checks params against cfg and returns a model.
func New(cfg Config, params Params) (*Model, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := Check(cfg, params); err != nil {
		return nil, err
	}
	return &Model{Config: cfg, Params: params}, nil
}

// Check verifies that params holds exactly the keys and shapes cfg needs. The
// error names every missing, unexpected and mis-shaped key.
func Check(cfg Config, params Params) error {
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
		m.kernels = map[string]*nn.Tensor{}
		for _, s := range m.Config.Spec() {
			switch s.Kind {
			case KindConv:
				m.kernels[s.Name] = nn.StandardizeWeight(nn.HWIOToOIHW(m.Params[s.Name]))
			case KindHead:
				k := m.Params[s.Name]
				m.head = k.Reshape(k.Shape[2], k.Shape[3])
			}
		}
	})
}

// Forward runs a batch x [N,3,H,W] (pixels scaled to [-1,1]) and returns the
// logits [N,classes] and the pre-logit features [N,FeatureDim].
func (m *Model) Forward(x *nn.Tensor) (logits, features *nn.Tensor) {
	m.prepare()
	cfg, p := m.Config, m.Params
	h := nn.Conv2D(x, m.kernels[RootKernel], 2, 3)
	h = nn.MaxPool(nn.ZeroPad(h, 1), 3, 2)
	for b := 0; b < 4; b++ {
		for u := 0; u < cfg.Units[b]; u++ {
			h = m.unit(h, b, u)
		}
	}
	h = nn.GroupNormReLU(h, cfg.Groups, p[HeadGamma].Data, p[HeadBeta].Data)
	features = nn.GlobalAvgPool(h)
	logits = nn.Linear(features, m.head, p[HeadBias].Data)
	return logits, features
}

func (m *Model) unit(x *nn.Tensor, b, u int) *nn.Tensor {
	cfg, p := m.Config, m.Params
	stride := 1
	if u == 0 {
		stride = BlockStride(b)
	}
	gn := func(t *nn.Tensor, part string) *nn.Tensor {
		return nn.GroupNormReLU(t, cfg.Groups, p[GammaKey(b, u, part)].Data, p[BetaKey(b, u, part)].Data)
	}
	pre := gn(x, "a")
	shortcut := x
	if cfg.HasProj(b, u) {
		shortcut = nn.Conv2D(pre, m.kernels[ConvKey(b, u, "a/proj")], stride, 0)
	}
	y := nn.Conv2D(pre, m.kernels[ConvKey(b, u, "a")], 1, 0)
	y = nn.Conv2D(gn(y, "b"), m.kernels[ConvKey(b, u, "b")], stride, 1)
	y = nn.Conv2D(gn(y, "c"), m.kernels[ConvKey(b, u, "c")], 1, 0)
	return nn.AddInPlace(y, shortcut)
}
