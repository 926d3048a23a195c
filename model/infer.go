package model

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/bitrun/bitrun/nn"
)

// Infer works out the architecture of a set of weights (units, widths, groups
// default 32 unless the width forbids it, classes), naming it after the
// released size or small config it matches. It reads only the shapes and the
// key names; use Check (or New) to verify the weights against the result.
func Infer(params Params) (Config, error) {
	shapes := make(map[string][]int, len(params))
	for k, t := range params {
		if t != nil {
			shapes[k] = t.Shape
		}
	}
	return InferShapes(shapes)
}

// InferShapes is Infer on a map of key to shape (as from ReadNPZShapes).
//
// Units per block come from the unit numbers in the key names (counted from
// unit01 while contiguous; keys past a gap are left for Check to report), the
// channel widths from the GroupNorm parameters that consume each block's
// output (falling back to the conv kernels), and the class count from the
// head bias. The small configurations match by shape and keep their group
// count; otherwise GroupNorm has 32 groups, or the largest count below 32 that
// divides every width. Errors wrap ErrArch.
func InferShapes(shapes map[string][]int) (Config, error) {
	present := map[[2]int]bool{}
	for k := range shapes {
		if b, u, ok := parseUnitKey(k); ok {
			present[[2]int{b, u}] = true
		}
	}
	var c Config
	for b := 0; b < 4; b++ {
		for present[[2]int{b, c.Units[b]}] {
			c.Units[b]++
		}
		if c.Units[b] == 0 {
			return Config{}, fmt.Errorf("%w: no units in block %d (no keys under %s/)", ErrArch, b+1, UnitPrefix(b, 0))
		}
	}
	var missing []string
	dim := func(keys ...string) int {
		for _, k := range keys {
			if s := shapes[k]; len(s) > 0 && s[len(s)-1] > 0 {
				return s[len(s)-1]
			}
		}
		missing = append(missing, keys[0])
		return 0
	}
	c.RootWidth = dim(GammaKey(0, 0, "a"), RootKernel)
	for b := 0; b < 4; b++ {
		consumer := HeadGamma
		if b < 3 {
			consumer = GammaKey(b+1, 0, "a")
		}
		c.Widths[b] = dim(consumer, ConvKey(b, 0, "c"))
	}
	c.Classes = dim(HeadBias, HeadKernel)
	if len(missing) > 0 {
		return Config{}, fmt.Errorf("%w: missing or empty %s", ErrArch, strings.Join(missing, ", "))
	}
	c.Name, c.Groups = nameAndGroups(c)
	if err := c.Validate(); err != nil {
		return Config{}, fmt.Errorf("%w: %w", ErrArch, err)
	}
	return c, nil
}

// parseUnitKey extracts the 0-based block and unit of a key
// "resnet/block{B}/unit{NN}/...".
func parseUnitKey(k string) (b, u int, ok bool) {
	rest, ok := strings.CutPrefix(k, "resnet/block")
	if !ok || len(rest) < 2 || rest[0] < '1' || rest[0] > '4' || rest[1] != '/' {
		return 0, 0, false
	}
	b = int(rest[0] - '1')
	rest, ok = strings.CutPrefix(rest[2:], "unit")
	if !ok {
		return 0, 0, false
	}
	num, _, found := strings.Cut(rest, "/")
	if !found || len(num) < 2 {
		return 0, 0, false
	}
	n, err := strconv.Atoi(num)
	if err != nil || n < 1 || fmt.Sprintf("%02d", n) != num {
		return 0, 0, false
	}
	return b, n - 1, true
}

// nameAndGroups names c after the small config or RDxW size it matches and
// picks its GroupNorm group count.
func nameAndGroups(c Config) (string, int) {
	names := slices.Sorted(maps.Keys(small))
	for _, name := range names {
		s := small[name]
		if s.Units == c.Units && s.RootWidth == c.RootWidth && s.Widths == c.Widths {
			return name, s.Groups
		}
	}
	groups := 32
	for ; groups > 1; groups-- {
		ok := c.RootWidth%groups == 0
		for _, w := range c.Widths {
			ok = ok && w%groups == 0 && (w/4)%groups == 0
		}
		if ok {
			break
		}
	}
	for depth, units := range depthUnits {
		wf := c.RootWidth / 64
		if units == c.Units && wf >= 1 && c.RootWidth == 64*wf && groups == 32 &&
			c.Widths == [4]int{256 * wf, 512 * wf, 1024 * wf, 2048 * wf} {
			return fmt.Sprintf("R%dx%d", depth, wf), groups
		}
	}
	return fmt.Sprintf("custom(units %d,%d,%d,%d; root %d; widths %d,%d,%d,%d; groups %d)",
		c.Units[0], c.Units[1], c.Units[2], c.Units[3], c.RootWidth,
		c.Widths[0], c.Widths[1], c.Widths[2], c.Widths[3], groups), groups
}

// CheckShapes is Check on a map of key to shape (as from ReadNPZShapes).
func CheckShapes(cfg Config, shapes map[string][]int) error {
	p := make(Params, len(shapes))
	for k, s := range shapes {
		p[k] = &nn.Tensor{Shape: s} // shape only; never leaves this function
	}
	return Check(cfg, p)
}

// Load reads a checkpoint, infers its architecture, checks it and returns the
// model. Errors name the file; a set of weights that does not fit the inferred
// architecture gives a *MismatchError listing every missing, unexpected and
// mis-shaped key.
func Load(path string) (*Model, error) {
	params, err := LoadNPZ(path)
	if err != nil {
		return nil, err
	}
	cfg, err := Infer(params)
	if err != nil {
		return nil, &loadError{path: path, err: err}
	}
	m, err := New(cfg, params)
	if err != nil {
		return nil, &loadError{path: path, err: err}
	}
	return m, nil
}

// loadError adds the file name to an error from Infer or New.
type loadError struct {
	path string
	err  error
}

func (e *loadError) Error() string {
	return "model: load " + e.path + ": " + strings.TrimPrefix(e.err.Error(), "model: ")
}

func (e *loadError) Unwrap() error { return e.err }
