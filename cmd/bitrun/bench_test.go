package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestBenchTrain times the native training step (fresh weights and a
// checkpoint, every parameter and the head alone) and the GEMM peak, and
// checks the figures bench reports are there and consistent.
func TestBenchTrain(t *testing.T) {
	m := tinyModel(t)
	for _, tc := range []struct {
		args      []string
		wantFlops bool
	}{
		{[]string{"--arch", "tiny", "--classes", "3", "--train"}, true},
		{[]string{"--weights", m.npz, "--train"}, true},
		{[]string{"--weights", m.npz, "--train", "--freeze", "head"}, false}, // work of a partial step not counted
	} {
		out, _, err := execCLI(t, append([]string{"bench", "--resolution", "32", "--batch", "4", "--runs", "3", "--warmup", "1", "--json"}, tc.args...)...)
		if err != nil {
			t.Fatalf("bench %v: %v", tc.args, err)
		}
		var r benchResult
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatal(err)
		}
		if r.Engine != "native-train" || r.Batch != 4 || r.Resolution != 32 || r.Runs != 3 {
			t.Errorf("bench %v: %+v", tc.args, r)
		}
		if b := r.BatchMs; !(b.P10 > 0 && b.P10 <= b.Median && b.Median <= b.P90) {
			t.Errorf("bench %v: batch ms not ordered: %+v", tc.args, b)
		}
		if (r.GFLOPs > 0) != tc.wantFlops {
			t.Errorf("bench %v: GFLOP/s %v, want it reported: %v", tc.args, r.GFLOPs, tc.wantFlops)
		}
		if r.CPUMsPerImage > 0 && r.CoresBusy <= 0 {
			t.Errorf("bench %v: cpu time without cores busy: %+v", tc.args, r)
		}
	}
	text, _, err := execCLI(t, "bench", "--arch", "tiny", "--train", "--resolution", "32", "--batch", "2", "--runs", "2", "--warmup", "0")
	if err != nil || !strings.Contains(text, "per image:") || !strings.Contains(text, "work:") || !strings.Contains(text, "native-train") {
		t.Errorf("text bench --train: %v\n%s", err, text)
	}
	out, _, err := execCLI(t, "bench", "--gemm", "--resolution", "16", "--runs", "3", "--warmup", "1", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var g benchResult
	if err := json.Unmarshal([]byte(out), &g); err != nil {
		t.Fatal(err)
	}
	if g.Engine != "gemm" || g.GFLOPs <= 0 || g.Resolution != 128 {
		t.Errorf("bench --gemm: %+v", g)
	}
}

func TestBenchTrainUsage(t *testing.T) {
	m := tinyModel(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--onnx", m.onnx, "--train"}, "--train times the native engine"},
		{[]string{"--arch", "tiny", "--freeze", "head"}, "--freeze applies to --train"},
		{[]string{"--arch", "tiny", "--train", "--freeze", "gn"}, "unknown freeze preset"},
		{[]string{"--arch", "R7x1", "--train"}, "R7x1"},
		{[]string{"--arch", "tiny", "--weights", m.npz}, "exclusive"},
		{[]string{"--gemm", "--arch", "tiny"}, "--gemm"},
	} {
		_, _, err := execCLI(t, append([]string{"bench", "--runs", "1"}, tc.args...)...)
		var ue usageError
		if err == nil || !errorsAs(err, &ue) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("bench %v: err %v, want a usage error naming %q", tc.args, err, tc.want)
		}
	}
}
