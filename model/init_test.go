package model

import (
	"math"
	"testing"
)

func TestInitDeterministic(t *testing.T) {
	cfg, _ := Arch("tiny", 10)
	a, b, c := Init(cfg, 1), Init(cfg, 1), Init(cfg, 2)
	if err := Check(cfg, a); err != nil {
		t.Fatal(err)
	}
	differ := false
	for _, k := range a.Names() {
		assertBitIdentical(t, k, a[k], b[k])
		for i := range a[k].Data {
			if a[k].Data[i] != c[k].Data[i] {
				differ = true
			}
		}
	}
	if !differ {
		t.Error("seeds 1 and 2 gave the same weights")
	}
	if Init(Config{Name: "bad"}, 1) != nil {
		t.Error("Init of an invalid config should return nil")
	}
}

// TestInitDistribution checks He-normal statistics of the conv kernels and
// the constant initialisation of GN and the head.
func TestInitDistribution(t *testing.T) {
	cfg, _ := Arch("small", 7)
	p := Init(cfg, 42)
	for _, s := range cfg.Spec() {
		d := p[s.Name].Data
		switch s.Kind {
		case KindConv:
			if len(d) < 20000 {
				continue // too few samples for a tight statistical check
			}
			fanIn := float64(s.Shape[0] * s.Shape[1] * s.Shape[2])
			want := math.Sqrt(2 / fanIn)
			var sum, sq float64
			for _, v := range d {
				sum += float64(v)
				sq += float64(v) * float64(v)
			}
			n := float64(len(d))
			mean, std := sum/n, math.Sqrt(sq/n-(sum/n)*(sum/n))
			// Sampling error of the std is about want/sqrt(2n) (< 0.5%).
			if math.Abs(std/want-1) > 0.03 || math.Abs(mean) > 5*want/math.Sqrt(n) {
				t.Errorf("%s: mean %.4g std %.4g, want 0 and %.4g", s.Name, mean, std, want)
			}
		case KindGamma, KindBeta, KindHead, KindHeadBias:
			want := float32(0)
			if s.Kind == KindGamma {
				want = 1
			}
			for i, v := range d {
				if v != want {
					t.Fatalf("%s[%d] = %v, want %v", s.Name, i, v, want)
				}
			}
		}
	}
}

func TestReplaceHead(t *testing.T) {
	cfg, p := tinyParams(t, 10, 5)
	q := ReplaceHead(p, 3)
	want := cfg
	want.Classes = 3
	if err := Check(want, q); err != nil {
		t.Fatal(err)
	}
	for _, k := range q.Names() {
		switch k {
		case HeadKernel, HeadBias:
			for _, v := range q[k].Data {
				if v != 0 {
					t.Fatalf("%s not zero", k)
				}
			}
		default:
			if q[k] != p[k] {
				t.Errorf("%s: trunk tensor not shared", k)
			}
		}
	}
	if len(p[HeadBias].Data) != 10 {
		t.Error("ReplaceHead changed the original head")
	}
	if m, err := New(want, q); err != nil || m == nil {
		t.Errorf("New on the replaced head: %v", err)
	}
	// A class count below 1 gives a head New rejects, without panicking.
	if _, err := Infer(ReplaceHead(p, -1)); err == nil {
		t.Error("Infer of a 0-class head: no error")
	}
}
