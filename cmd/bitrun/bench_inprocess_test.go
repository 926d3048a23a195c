package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestBenchInProcess: bench runs from its options struct alone, without
// cobra (issue 17: validate, then run(ctx, opts, stdout, stderr)), and
// validate refuses flag combinations as usage errors.
func TestBenchInProcess(t *testing.T) {
	o := benchOptions{arch: "tiny", classes: 3, resolution: 16, batch: 2, runs: 2, warmup: 1, streams: 1,
		train: true, freeze: "all"}
	if err := o.validate(); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if err := runBench(context.Background(), o, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"engine:      native-train", "per image:", "work:"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
	if !strings.HasPrefix(errOut.String(), "bench: native-train") {
		t.Errorf("stderr %q", errOut.String())
	}
	for _, tc := range []struct {
		name string
		o    benchOptions
		want string
	}{
		{"no model", benchOptions{resolution: 16, batch: 1, runs: 1, streams: 1}, "give a model"},
		{"gemm and arch", benchOptions{gemm: true, arch: "tiny", resolution: 16, batch: 1, runs: 1, streams: 1}, "--gemm"},
		{"streams native", benchOptions{arch: "tiny", resolution: 16, batch: 1, runs: 1, streams: 2}, "--streams applies"},
		{"train small", benchOptions{arch: "tiny", train: true, resolution: 4, batch: 1, runs: 1, streams: 1}, "--resolution 4: want 16..8192 pixels"},
		{"channels", benchOptions{arch: "tiny", channels: 1, resolution: 16, batch: 1, runs: 1, streams: 1}, "BiT models take 3"},
	} {
		wantUsage(t, tc.name, tc.o.validate(), tc.want)
	}
}
