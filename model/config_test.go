package model

import (
	"math"
	"testing"
)

// TestParamCountReleased compares Config.ParamCount at 1000 classes with the
// parameter counts published for the released sizes.
func TestParamCountReleased(t *testing.T) {
	want := map[string]float64{
		"R50x1": 25.5e6, "R101x1": 44.5e6, "R50x3": 217e6,
		"R152x2": 236e6, "R101x3": 388e6, "R152x4": 937e6,
	}
	for _, name := range Released {
		cfg, err := Arch(name, 1000)
		if err != nil {
			t.Fatal(err)
		}
		got := float64(cfg.ParamCount())
		t.Logf("%s: %d parameters (reference %.4g)", name, cfg.ParamCount(), want[name])
		if rel := math.Abs(got/want[name] - 1); rel > 0.005 {
			t.Errorf("%s: %d parameters, reference %.4g (off by %.2f%%)", name, cfg.ParamCount(), want[name], 100*rel)
		}
	}
}

func TestStages(t *testing.T) {
	cfg, _ := Arch("R50x1", 1000)
	// Feature map sizes from the reference: root, pool, block1..4.
	sizes := map[int][]int{
		128: {64, 32, 32, 16, 8, 4},
		224: {112, 56, 56, 28, 14, 7},
		480: {240, 120, 120, 60, 30, 15},
	}
	for res, want := range sizes {
		st, err := cfg.Stages(res)
		if err != nil {
			t.Fatal(err)
		}
		if len(st) != 7 || st[0].Name != "root" || st[6].Name != "head" {
			t.Fatalf("stages %+v", st)
		}
		for i, w := range want {
			if st[i].Size != w {
				t.Errorf("%d px: %s size %d, want %d", res, st[i].Name, st[i].Size, w)
			}
		}
		var params int64
		for _, s := range st {
			params += s.Params
		}
		if params != cfg.ParamCount() {
			t.Errorf("stage params sum to %d, want %d", params, cfg.ParamCount())
		}
	}
	// FLOPs of R50x1 from the reference: about 2.7 G at 128 px and 8.2 G at 224 px.
	for res, want := range map[int]float64{128: 2.7e9, 224: 8.2e9} {
		st, _ := cfg.Stages(res)
		var flops float64
		for _, s := range st {
			flops += float64(s.FLOPs)
		}
		t.Logf("R50x1 at %d px: %.4g FLOPs (reference %.2g)", res, flops, want)
		if math.Abs(flops/want-1) > 0.03 {
			t.Errorf("%d px: %.3g FLOPs, reference %.3g", res, flops, want)
		}
	}
	if _, err := cfg.Stages(0); err == nil {
		t.Error("Stages(0): no error")
	}
	b2 := func() Stage { st, _ := cfg.Stages(224); return st[3] }()
	if b2.Units != 4 || b2.In != 256 || b2.Mid != 128 || b2.Out != 512 || b2.Stride != 2 {
		t.Errorf("block2 %+v", b2)
	}
}
