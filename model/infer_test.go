package model

import (
	"errors"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/bitrun/bitrun/nn"
)

func specShapes(cfg Config) map[string][]int {
	shapes := map[string][]int{}
	for _, s := range cfg.Spec() {
		shapes[s.Name] = s.Shape
	}
	return shapes
}

// TestInferShapesEveryArch infers every named architecture (and a few more
// RDxW sizes) back from the shapes of its parameters.
func TestInferShapesEveryArch(t *testing.T) {
	names := append(ArchNames(), "R50x2", "R101x4", "R152x1")
	for _, name := range names {
		for _, classes := range []int{1, 10, 1000, 21843} {
			want, err := Arch(name, classes)
			if err != nil {
				t.Fatal(err)
			}
			got, err := InferShapes(specShapes(want))
			if err != nil {
				t.Fatalf("%s/%d: %v", name, classes, err)
			}
			if got != want {
				t.Errorf("%s/%d: inferred %+v, want %+v", name, classes, got, want)
			}
		}
	}
}

func TestInferCustom(t *testing.T) {
	tests := []struct {
		cfg    Config
		groups int
	}{
		// Released-style widths with other unit counts keep 32 groups.
		{Config{Units: [4]int{2, 3, 1, 1}, RootWidth: 64, Widths: [4]int{256, 512, 1024, 2048}}, 32},
		// Widths whose bottleneck (48/4 = 12) forbids 32 groups: the largest
		// count <= 32 dividing every width.
		{Config{Units: [4]int{1, 1, 1, 1}, RootWidth: 24, Widths: [4]int{48, 96, 192, 384}}, 12},
		{Config{Units: [4]int{1, 2, 1, 1}, RootWidth: 16, Widths: [4]int{32, 64, 128, 256}}, 8},
	}
	for _, tc := range tests {
		want := tc.cfg
		want.Groups, want.Classes = tc.groups, 7
		got, err := InferShapes(specShapes(want))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(got.Name, "custom(") || !strings.Contains(got.Name, "root "+strconv.Itoa(want.RootWidth)) {
			t.Errorf("name %q, want custom(...) with the numbers", got.Name)
		}
		got.Name = ""
		if got != want {
			t.Errorf("inferred %+v, want %+v", got, want)
		}
	}
}

func TestInferErrors(t *testing.T) {
	cfg, _ := Arch("tiny", 10)
	tests := []struct {
		name   string
		mutate func(map[string][]int)
		want   string
	}{
		{"empty", func(s map[string][]int) { clear(s) }, "no units in block 1"},
		{"no block3", func(s map[string][]int) {
			for k := range s {
				if strings.HasPrefix(k, "resnet/block3/") {
					delete(s, k)
				}
			}
		}, "no units in block 3"},
		{"no head", func(s map[string][]int) { delete(s, HeadBias); delete(s, HeadKernel) }, HeadBias},
		{"no root", func(s map[string][]int) { delete(s, RootKernel); delete(s, GammaKey(0, 0, "a")) }, GammaKey(0, 0, "a")},
		{"odd width", func(s map[string][]int) { s[HeadGamma] = []int{250} }, "width"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := specShapes(cfg)
			tc.mutate(s)
			_, err := InferShapes(s)
			if !errors.Is(err, ErrArch) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want ErrArch mentioning %q", err, tc.want)
			}
		})
	}
}

// TestInferUnitGap: units are counted while contiguous; keys past a gap are
// reported by Check as unexpected rather than silently accepted.
func TestInferUnitGap(t *testing.T) {
	cfg, _ := Arch("tiny", 10)
	s := specShapes(cfg)
	s[GammaKey(1, 2, "a")] = []int{64} // block2/unit03 without unit02
	got, err := InferShapes(s)
	if err != nil {
		t.Fatal(err)
	}
	if got.Units != cfg.Units {
		t.Errorf("units %v, want %v", got.Units, cfg.Units)
	}
	var me *MismatchError
	if err := CheckShapes(got, s); !errors.As(err, &me) || !slices.Contains(me.Unexpected, GammaKey(1, 2, "a")) {
		t.Errorf("CheckShapes: %v, want the stray key reported unexpected", err)
	}
}

// TestLoadRejectsTransposedKernel saves weights with one kernel in OIHW
// instead of HWIO and checks that Load names exactly that key.
func TestLoadRejectsTransposedKernel(t *testing.T) {
	for _, key := range []string{ConvKey(1, 0, "a"), ConvKey(3, 0, "b"), RootKernel, ConvKey(0, 0, "a/proj"), ConvKey(0, 0, "c")} {
		t.Run(key, func(t *testing.T) {
			_, p := tinyParams(t, 10, 1)
			p[key] = nn.HWIOToOIHW(p[key])
			path := filepath.Join(t.TempDir(), "bad.npz")
			if err := SaveNPZ(path, p); err != nil {
				t.Fatal(err)
			}
			_, err := Load(path)
			var me *MismatchError
			if !errors.As(err, &me) {
				t.Fatalf("Load: %v, want a *MismatchError", err)
			}
			if len(me.Shape) != 1 || !strings.HasPrefix(me.Shape[0], key+":") || len(me.Missing)+len(me.Unexpected) != 0 {
				t.Errorf("mismatch %+v, want only %s mis-shaped", me, key)
			}
			if !strings.Contains(err.Error(), key) || !strings.Contains(err.Error(), path) {
				t.Errorf("error %q should name the key and the file", err)
			}
		})
	}
}

func TestLoadNamesMissingAndUnexpected(t *testing.T) {
	_, p := tinyParams(t, 10, 1)
	delete(p, BetaKey(2, 0, "b"))
	p["resnet/extra/thing"] = nn.New(3)
	path := filepath.Join(t.TempDir(), "m.npz")
	if err := SaveNPZ(path, p); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	var me *MismatchError
	if !errors.As(err, &me) || !slices.Equal(me.Missing, []string{BetaKey(2, 0, "b")}) || !slices.Equal(me.Unexpected, []string{"resnet/extra/thing"}) {
		t.Errorf("Load: %v", err)
	}
}

func TestLoadRoundTrip(t *testing.T) {
	cfg, p := tinyParams(t, 4, 9)
	path := filepath.Join(t.TempDir(), "m.npz")
	if err := SaveNPZ(path, p); err != nil {
		t.Fatal(err)
	}
	m, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if m.Config != cfg {
		t.Errorf("config %+v, want %+v", m.Config, cfg)
	}
	x := nn.New(1, 3, 32, 32)
	for i := range x.Data {
		x.Data[i] = float32(i%13)/6 - 1
	}
	ref, err := New(cfg, p)
	if err != nil {
		t.Fatal(err)
	}
	p[HeadBias].Data[0], p[HeadBias].Data[1], p[HeadBias].Data[2] = 0, 0, 0 // the special values of tinyParams
	m.Params[HeadBias].Data[0], m.Params[HeadBias].Data[1], m.Params[HeadBias].Data[2] = 0, 0, 0
	a, _ := m.Forward(x)
	b, _ := ref.Forward(x)
	assertBitIdentical(t, "logits", a, b)
}
