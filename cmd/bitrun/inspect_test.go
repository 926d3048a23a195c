package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bitrun/bitrun/model"
)

// TestInitInspectRoundTrip writes every architecture with `bitrun init` and
// reads it back with `bitrun inspect --json`. Under -short: the small configs
// and R50x1; otherwise every released size (R152x4 alone writes 3.7 GB).
func TestInitInspectRoundTrip(t *testing.T) {
	archs := []string{"tiny", "small", "R50x1"}
	if !testing.Short() {
		archs = append(archs, model.Released[1:]...)
	}
	dir := t.TempDir()
	for _, arch := range archs {
		t.Run(arch, func(t *testing.T) {
			classes := 1000
			if arch == "tiny" || arch == "small" {
				classes = 10
			}
			cfg, err := model.Arch(arch, classes)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, arch+".npz")
			defer os.Remove(path)
			defer debug.FreeOSMemory() // the large sizes hold gigabytes
			stdout, stderr, code := runCaptured(t, "init", "--arch", arch, "--classes", strconv.Itoa(classes), "--out", path, "--seed", "3")
			if code != 0 || stdout != "" || !strings.Contains(stderr, "wrote "+path) {
				t.Fatalf("init: exit %d, stdout %q, stderr %q", code, stdout, stderr)
			}
			stdout, stderr, code = runCaptured(t, "inspect", "--json", path)
			if code != 0 || stderr != "" {
				t.Fatalf("inspect: exit %d, stderr %q", code, stderr)
			}
			var rep inspectReport
			if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
				t.Fatalf("inspect --json: %v\n%s", err, stdout)
			}
			if rep.Arch != cfg.Name || rep.Config != cfg || rep.Classes != classes {
				t.Errorf("inspect says %s %+v, want %+v", rep.Arch, rep.Config, cfg)
			}
			if rep.Parameters != cfg.ParamCount() || rep.Arrays != len(cfg.Spec()) {
				t.Errorf("inspect: %d parameters in %d arrays, want %d in %d", rep.Parameters, rep.Arrays, cfg.ParamCount(), len(cfg.Spec()))
			}
			if len(rep.Stages) != 7 || rep.Resolution != 224 || rep.Stages[5].Size != 7 {
				t.Errorf("stages at %d px: %+v", rep.Resolution, rep.Stages)
			}
			size, sum := digestOf(t, path)
			if rep.Size != size || rep.SHA256 != sum {
				t.Errorf("inspect: size %d sha256 %s, want %d %s", rep.Size, rep.SHA256, size, sum)
			}
			if arch == "R50x1" && (rep.Parameters < 25_500_000 || rep.Parameters >= 25_600_000) {
				t.Errorf("R50x1 with 1000 classes: %d parameters, want 25,5xx,xxx", rep.Parameters)
			}
			if testing.Short() {
				// What bitrun wrote loads back bit-identical to a fresh Init.
				got, err := model.LoadNPZ(path)
				if err != nil {
					t.Fatal(err)
				}
				want := model.Init(cfg, 3)
				for _, k := range want.Names() {
					g, w := got[k], want[k]
					if g == nil || len(g.Data) != len(w.Data) {
						t.Fatalf("%s missing or resized", k)
					}
					for i := range w.Data {
						if g.Data[i] != w.Data[i] {
							t.Fatalf("%s[%d] = %v, want %v", k, i, g.Data[i], w.Data[i])
						}
					}
				}
			}
		})
	}
}

func digestOf(t *testing.T, path string) (int64, string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		t.Fatal(err)
	}
	return n, hex.EncodeToString(h.Sum(nil))
}

func TestInspectText(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r50.npz")
	initCheckpoint(t, path, "--arch", "R50x1")
	stdout, stderr, code := runCaptured(t, "inspect", "--resolution", "128", path)
	if code != 0 {
		t.Fatalf("inspect: %d %s", code, stderr)
	}
	for _, want := range []string{
		"arch:        R50x1", "classes:     1000", "parameters:  25,549,352 (",
		"resolution:  128 (2.67 GFLOPs", "sha256:      ",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
	// Per-block rows: name, units, in, mid, out, stride, output size.
	rows := map[string][]string{
		"root":   {"-", "3", "-", "64", "2", "64x64"},
		"block1": {"3", "64", "64", "256", "1", "32x32"},
		"block2": {"4", "256", "128", "512", "2", "16x16"},
		"block3": {"6", "512", "256", "1024", "2", "8x8"},
		"block4": {"3", "1024", "512", "2048", "2", "4x4"},
		"head":   {"-", "2048", "-", "1000", "1", "1x1"},
	}
	for _, line := range strings.Split(stdout, "\n") {
		f := strings.Fields(line)
		if len(f) < 7 {
			continue
		}
		if want, ok := rows[f[0]]; ok {
			if strings.Join(f[1:7], " ") != strings.Join(want, " ") {
				t.Errorf("%s row %v, want %v", f[0], f[1:7], want)
			}
			delete(rows, f[0])
		}
	}
	if len(rows) != 0 {
		t.Errorf("rows missing: %v\n%s", rows, stdout)
	}
}

func TestInitInspectErrors(t *testing.T) {
	dir := t.TempDir()
	exists := writeTestFile(t, dir, "exists.npz", "x")
	junk := writeTestFile(t, dir, "junk.npz", "not a zip")
	out := filepath.Join(dir, "new.npz")
	tests := []struct {
		args []string
		code int
		want string // in stderr
	}{
		{[]string{"init"}, 2, "--arch is required"},
		{[]string{"init", "--arch", "tiny"}, 2, "--out is required"},
		{[]string{"init", "--arch", "R51x1", "--out", out}, 2, "unknown architecture"},
		{[]string{"init", "--arch", "tiny", "--classes", "0", "--out", out}, 2, "--classes must be positive"},
		{[]string{"init", "--arch", "tiny", "--classes", "ten", "--out", out}, 2, "invalid argument"},
		{[]string{"init", "--arch", "tiny", "--out", exists}, 1, "already exists"},
		{[]string{"init", "--arch", "tiny", "--out", filepath.Join(dir, "no", "such", "dir.npz")}, 1, "no such file"},
		{[]string{"inspect"}, 2, "no checkpoint"},
		{[]string{"inspect", "a.npz", "b.npz"}, 2, "accepts at most 1 arg"},
		{[]string{"inspect", "--weights", junk, junk}, 2, "not both"},
		{[]string{"inspect", "--resolution", "0", junk}, 2, "--resolution 0: want 16..8192 pixels"},
		{[]string{"inspect", filepath.Join(dir, "missing.npz")}, 1, "no such file"},
		{[]string{"inspect", junk}, 1, "malformed checkpoint"},
		{[]string{"inspect", "--bogus", junk}, 2, "unknown flag"},
	}
	for _, tc := range tests {
		t.Run(tc.args[0]+"/"+tc.want, func(t *testing.T) {
			stdout, stderr, code := runCaptured(t, tc.args...)
			if code != tc.code || !strings.Contains(stderr, tc.want) || stdout != "" {
				t.Errorf("%v: exit %d (want %d), stdout %q, stderr %q (want %q)", tc.args, code, tc.code, stdout, stderr, tc.want)
			}
			if _, err := os.Stat(out); err == nil {
				t.Errorf("%s was written", out)
			}
		})
	}
	// --force overwrites; the result is a valid checkpoint.
	initCheckpoint(t, exists, "--arch", "tiny", "--force")
	if _, err := model.Load(exists); err != nil {
		t.Error(err)
	}
}

// TestInspectMismatch: a checkpoint with a transposed kernel fails naming it.
func TestInspectMismatch(t *testing.T) {
	cfg, _ := model.Arch("tiny", 10)
	p := model.Init(cfg, 1)
	key := model.ConvKey(2, 0, "a")
	k := p[key]
	k.Shape = []int{k.Shape[3], k.Shape[2], k.Shape[0], k.Shape[1]}
	path := filepath.Join(t.TempDir(), "bad.npz")
	if err := model.SaveNPZ(path, p); err != nil {
		t.Fatal(err)
	}
	_, stderr, code := runCaptured(t, "inspect", path)
	if code != 1 || !strings.Contains(stderr, key) {
		t.Errorf("exit %d, stderr %q, want 1 naming %s", code, stderr, key)
	}
}

// fileDigest reuses a digest zoo.Pull verified for the file as it is, and
// reads the file again once it changed.
func TestFileDigestReusesVerified(t *testing.T) {
	p := filepath.Join(t.TempDir(), "w.npz")
	if err := os.WriteFile(p, []byte("weights"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, real, err := fileDigest(t.Context(), p)
	if err != nil {
		t.Fatal(err)
	}
	rememberDigest(p, "verified-by-zoo")
	if _, got, _ := fileDigest(t.Context(), p); got != "verified-by-zoo" {
		t.Errorf("digest %s, want the remembered one", got)
	}
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(p, later, later); err != nil {
		t.Fatal(err)
	}
	if _, got, _ := fileDigest(t.Context(), p); got != real {
		t.Errorf("digest of a changed file %s, want %s", got, real)
	}
}
