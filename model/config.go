package model

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// Config describes a BiT ResNet-v2 network.
type Config struct {
	Name      string `json:"name"`
	Units     [4]int `json:"units"`      // bottleneck units per block
	RootWidth int    `json:"root_width"` // channels out of the root conv
	Widths    [4]int `json:"widths"`     // output channels of each block (mid = out/4)
	Groups    int    `json:"groups"`     // GroupNorm groups everywhere
	Classes   int    `json:"classes"`    // head outputs
}

// Released architectures and the small configurations for tests and CPU demos.
var depthUnits = map[int][4]int{
	50:  {3, 4, 6, 3},
	101: {3, 4, 23, 3},
	152: {3, 8, 36, 3},
}

// Released lists the released BiT sizes in the reference's order.
var Released = []string{"R50x1", "R50x3", "R101x1", "R101x3", "R152x2", "R152x4"}

var small = map[string]Config{
	// tiny: one unit per block, narrow; for unit tests and golden files.
	"tiny": {Units: [4]int{1, 1, 1, 1}, RootWidth: 16, Widths: [4]int{32, 64, 128, 256}, Groups: 8},
	// small: two units per block; for CPU training demos (MNIST, Fashion-MNIST).
	"small": {Units: [4]int{2, 2, 2, 2}, RootWidth: 32, Widths: [4]int{64, 128, 256, 512}, Groups: 16},
}

// Arch returns the configuration named name ("R50x1", "R152x4", "tiny", ...)
// with the given number of head classes. Any RDxW with D in {50, 101, 152} and
// W >= 1 is accepted; the released ones are listed in Released.
func Arch(name string, classes int) (Config, error) {
	if classes <= 0 {
		return Config{}, fmt.Errorf("model: class count must be positive, got %d", classes)
	}
	if c, ok := small[strings.ToLower(name)]; ok {
		c.Name = strings.ToLower(name)
		c.Classes = classes
		return c, nil
	}
	depth, wf, ok := parseRxW(name)
	if !ok {
		return Config{}, fmt.Errorf("model: unknown architecture %q (want one of %s)", name, strings.Join(ArchNames(), ", "))
	}
	return Config{
		Name:      fmt.Sprintf("R%dx%d", depth, wf),
		Units:     depthUnits[depth],
		RootWidth: 64 * wf,
		Widths:    [4]int{256 * wf, 512 * wf, 1024 * wf, 2048 * wf},
		Groups:    32,
		Classes:   classes,
	}, nil
}

// ArchNames lists the names Arch accepts without parameters: the released
// sizes and the small configurations.
func ArchNames() []string {
	names := append([]string(nil), Released...)
	s := slices.Sorted(maps.Keys(small))
	return append(names, s...)
}

func parseRxW(name string) (depth, wf int, ok bool) {
	if len(name) < 4 || (name[0] != 'R' && name[0] != 'r') {
		return 0, 0, false
	}
	d, w, found := strings.Cut(strings.ToLower(name[1:]), "x")
	if !found {
		return 0, 0, false
	}
	depth, err1 := strconv.Atoi(d)
	wf, err2 := strconv.Atoi(w)
	if err1 != nil || err2 != nil || wf < 1 || wf > 64 {
		return 0, 0, false
	}
	if _, known := depthUnits[depth]; !known {
		return 0, 0, false
	}
	return depth, wf, true
}

// Validate checks that the configuration is internally consistent.
func (c Config) Validate() error {
	if c.Groups <= 0 || c.RootWidth <= 0 || c.Classes <= 0 {
		return fmt.Errorf("model: config %q: groups, root width and classes must be positive", c.Name)
	}
	for b := 0; b < 4; b++ {
		if c.Units[b] <= 0 {
			return fmt.Errorf("model: config %q: block %d has no units", c.Name, b+1)
		}
		if c.Widths[b]%4 != 0 || (c.Widths[b]/4)%c.Groups != 0 {
			return fmt.Errorf("model: config %q: block %d width %d: mid width must be a multiple of %d groups", c.Name, b+1, c.Widths[b], c.Groups)
		}
	}
	if c.RootWidth%c.Groups != 0 {
		return fmt.Errorf("model: config %q: root width %d not divisible by %d groups", c.Name, c.RootWidth, c.Groups)
	}
	return nil
}

// BlockStride is the stride of the first unit of block b (0-based).
func BlockStride(b int) int {
	if b == 0 {
		return 1
	}
	return 2
}

// FeatureDim is the width of the pre-logit features.
func (c Config) FeatureDim() int { return c.Widths[3] }

// UnitPrefix is the checkpoint key prefix of unit u (0-based) of block b (0-based).
func UnitPrefix(b, u int) string { return fmt.Sprintf("resnet/block%d/unit%02d", b+1, u+1) }

// Official checkpoint key names outside the units.
const (
	RootKernel = "resnet/root_block/standardized_conv2d/kernel"
	HeadGamma  = "resnet/group_norm/gamma"
	HeadBeta   = "resnet/group_norm/beta"
	HeadKernel = "resnet/head/conv2d/kernel"
	HeadBias   = "resnet/head/conv2d/bias"
)

// Key suffixes inside a unit.
const (
	convSuffix  = "/standardized_conv2d/kernel"
	gammaSuffix = "/group_norm/gamma"
	betaSuffix  = "/group_norm/beta"
)

// ConvKey, GammaKey and BetaKey name a unit's conv kernel and GN parameters;
// part is "a", "b", "c" or "a/proj" (conv only).
func ConvKey(b, u int, part string) string  { return UnitPrefix(b, u) + "/" + part + convSuffix }
func GammaKey(b, u int, part string) string { return UnitPrefix(b, u) + "/" + part + gammaSuffix }
func BetaKey(b, u int, part string) string  { return UnitPrefix(b, u) + "/" + part + betaSuffix }

// ParamKind tells how a parameter is used and initialised.
type ParamKind int

const (
	KindConv     ParamKind = iota // standardised conv kernel, HWIO
	KindGamma                     // GroupNorm scale
	KindBeta                      // GroupNorm shift
	KindHead                      // head kernel (1,1,C,classes), not standardised
	KindHeadBias                  // head bias
)

// ParamSpec is one expected checkpoint entry.
type ParamSpec struct {
	Name  string
	Shape []int
	Kind  ParamKind
}

// HasProj reports whether unit u of block b has a projection shortcut.
func (c Config) HasProj(b, u int) bool {
	if u != 0 {
		return false
	}
	in := c.RootWidth
	if b > 0 {
		in = c.Widths[b-1]
	}
	return BlockStride(b) != 1 || in != c.Widths[b]
}

// Spec lists every parameter of the network with its official name and
// checkpoint shape, in forward order.
func (c Config) Spec() []ParamSpec {
	conv := func(name string, k, in, out int) ParamSpec {
		return ParamSpec{Name: name, Shape: []int{k, k, in, out}, Kind: KindConv}
	}
	specs := []ParamSpec{conv(RootKernel, 7, 3, c.RootWidth)}
	in := c.RootWidth
	for b := 0; b < 4; b++ {
		out := c.Widths[b]
		mid := out / 4
		for u := 0; u < c.Units[b]; u++ {
			gn := func(part string, ch int) []ParamSpec {
				return []ParamSpec{
					{Name: GammaKey(b, u, part), Shape: []int{ch}, Kind: KindGamma},
					{Name: BetaKey(b, u, part), Shape: []int{ch}, Kind: KindBeta},
				}
			}
			specs = append(specs, gn("a", in)...)
			if c.HasProj(b, u) {
				specs = append(specs, conv(ConvKey(b, u, "a/proj"), 1, in, out))
			}
			specs = append(specs, conv(ConvKey(b, u, "a"), 1, in, mid))
			specs = append(specs, gn("b", mid)...)
			specs = append(specs, conv(ConvKey(b, u, "b"), 3, mid, mid))
			specs = append(specs, gn("c", mid)...)
			specs = append(specs, conv(ConvKey(b, u, "c"), 1, mid, out))
			in = out
		}
	}
	specs = append(specs,
		ParamSpec{Name: HeadGamma, Shape: []int{in}, Kind: KindGamma},
		ParamSpec{Name: HeadBeta, Shape: []int{in}, Kind: KindBeta},
		ParamSpec{Name: HeadKernel, Shape: []int{1, 1, in, c.Classes}, Kind: KindHead},
		ParamSpec{Name: HeadBias, Shape: []int{c.Classes}, Kind: KindHeadBias},
	)
	return specs
}

// ParamCount is the number of scalar parameters.
func (c Config) ParamCount() int64 {
	var n int64
	for _, s := range c.Spec() {
		p := int64(1)
		for _, d := range s.Shape {
			p *= int64(d)
		}
		n += p
	}
	return n
}
