package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/bitrun/bitrun/eval"
)

// runShardProcess runs `bitrun ARGS` as its own process (the test binary
// through TestServeHelperProcess) with extra environment.
func runShardProcess(args []string, env ...string) *exec.Cmd {
	a, _ := json.Marshal(args)
	cmd := exec.Command(os.Args[0], "-test.run=^TestServeHelperProcess$")
	cmd.Env = append(append(os.Environ(), "BITRUN_SERVE_HELPER=1", "BITRUN_SERVE_ARGS="+string(a)), env...)
	return cmd
}

// TestShardedEvalAndExtract runs eval and extract as N=3 shard processes
// (one taking its index from JOB_COMPLETION_INDEX, as an Indexed Job pod
// does), merges them, and checks the merged report and feature files equal
// the unsharded run's bit for bit; merges of a missing, repeated or
// foreign shard are refused.
func TestShardedEvalAndExtract(t *testing.T) {
	requireORTCLI(t)
	requireFashion(t)
	m := tinyModel(t)
	dir := t.TempDir()
	const limit = "301" // 101 + 100 + 100: uneven shards
	common := []string{"--onnx", m.onnx, "--data", fashionDir, "--limit", limit, "--threads", "1", "--batch", "16"}
	whole := filepath.Join(dir, "report-whole.json")
	if _, _, err := execCLI(t, append([]string{"eval", "--json", "--report", whole}, common...)...); err != nil {
		t.Fatal(err)
	}
	if _, _, err := execCLI(t, append([]string{"extract", "--out", filepath.Join(dir, "whole.npy")}, common...)...); err != nil {
		t.Fatal(err)
	}

	// Three shards of each as separate processes, all at once.
	var procs []*exec.Cmd
	var outs []*bytes.Buffer
	for i := range 3 {
		shard, env := strconv.Itoa(i)+"/3", []string(nil)
		if i == 2 {
			shard, env = "3", []string{"JOB_COMPLETION_INDEX=2"}
		}
		for _, args := range [][]string{
			append([]string{"eval", "--shard", shard, "--report", filepath.Join(dir, "eval-{shard}.json")}, common...),
			append([]string{"extract", "--shard", shard, "--out", filepath.Join(dir, "feats-{shard}.npy")}, common...),
		} {
			p := runShardProcess(args, env...)
			var b bytes.Buffer
			p.Stdout, p.Stderr = &b, &b
			if err := p.Start(); err != nil {
				t.Fatal(err)
			}
			procs, outs = append(procs, p), append(outs, &b)
		}
	}
	for i, p := range procs {
		if err := p.Wait(); err != nil {
			t.Fatalf("shard process %v: %v\n%s", p.Args, err, outs[i])
		}
	}

	shards := []string{filepath.Join(dir, "eval-0.json"), filepath.Join(dir, "eval-1.json"), filepath.Join(dir, "eval-2.json")}
	merged := filepath.Join(dir, "merged.json")
	if _, _, err := execCLI(t, append([]string{"eval", "merge", "--out", merged}, shards...)...); err != nil {
		t.Fatal(err)
	}
	withoutTiming := func(path string) []byte {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var r eval.Report
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatal(err)
		}
		if r.Images != 301 {
			t.Errorf("%s: %d images", path, r.Images)
		}
		r.Timing = eval.Timing{}
		out, _ := json.Marshal(r)
		return out
	}
	if a, b := withoutTiming(whole), withoutTiming(merged); !bytes.Equal(a, b) {
		t.Errorf("merged report differs from the unsharded one:\n%s\n%s", a, b)
	}

	fmerged := filepath.Join(dir, "merged.npy")
	parts := []string{filepath.Join(dir, "feats-2.npy"), filepath.Join(dir, "feats-0.npy"), filepath.Join(dir, "feats-1.npy")}
	if _, _, err := execCLI(t, append([]string{"extract", "merge", "--out", fmerged}, parts...)...); err != nil {
		t.Fatal(err)
	}
	w1, w2, w3, w4 := eval.FeaturePaths(filepath.Join(dir, "whole.npy"))
	m1, m2, m3, m4 := eval.FeaturePaths(fmerged)
	for _, pair := range [][2]string{{w1, m1}, {w2, m2}, {w3, m3}, {w4, m4}} {
		a, err1 := os.ReadFile(pair[0])
		b, err2 := os.ReadFile(pair[1])
		if err1 != nil || err2 != nil || !bytes.Equal(a, b) {
			t.Errorf("%s and %s differ (%v %v, %d and %d bytes)", pair[0], pair[1], err1, err2, len(a), len(b))
		}
	}
	if f, err := eval.ReadFeatures(w1); err != nil || f.Rows != 301 || f.Dim < 1 || f.Files[300] != "#300" || f.Labels[0] < 0 {
		t.Errorf("features %v %v", f.FeaturesManifest, err)
	}

	// Refusals.
	foreign := filepath.Join(dir, "foreign.json")
	b, _ := os.ReadFile(shards[1])
	os.WriteFile(foreign, bytes.Replace(b, []byte(`"model_sha256": "`), []byte(`"model_sha256": "0`), 1), 0o644)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"eval", "merge", shards[0], shards[1]}, "missing"},
		{[]string{"eval", "merge", shards[0], shards[1], shards[1], shards[2]}, "twice"},
		{[]string{"eval", "merge", shards[0], foreign, shards[2]}, "different models"},
		{[]string{"eval", "merge", whole}, "not a shard"},
		{[]string{"extract", "merge", "--out", filepath.Join(dir, "x.npy"), parts[0], parts[1]}, "missing"},
		{[]string{"extract", "merge", "--out", filepath.Join(dir, "x.npy"), parts[0], parts[0], parts[1], parts[2]}, "twice"},
	} {
		if _, _, err := execCLI(t, tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want an error with %q", tc.args, err, tc.want)
		}
	}
	// An output that cannot be written is a state error in the merge
	// commands, as in eval and extract (no usage text, exit 1).
	nowhere := filepath.Join(dir, "no-such-folder", "m.npy")
	for _, args := range [][]string{
		{"eval", "merge", "--out", nowhere, shards[0], shards[1], shards[2]},
		{"eval", "merge", "--plot", nowhere, shards[0], shards[1], shards[2]},
		{"extract", "merge", "--out", nowhere, parts[0], parts[1], parts[2]},
	} {
		_, _, err := execCLI(t, args...)
		var ue usageError
		if err == nil || errors.As(err, &ue) || !strings.Contains(err.Error(), " merge: --") || !strings.Contains(err.Error(), "no-such-folder") {
			t.Errorf("%v: %v, want a state error naming the flag and the folder", args, err)
		}
	}
	for _, bad := range []string{"3/3", "-1/2", "x", "2/0"} {
		if _, _, err := execCLI(t, "eval", "--onnx", m.onnx, "--data", fashionDir, "--shard", bad); err == nil {
			t.Errorf("--shard %s accepted", bad)
		}
	}
}
