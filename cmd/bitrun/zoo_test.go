package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bitrun/bitrun/model"
	"github.com/bitrun/bitrun/zoo"
	"github.com/spf13/cobra"
)

// zooTestServer serves a tiny checkpoint (HTTP Range via http.ServeContent)
// at test/tiny.npz and registers the catalog entry test-tiny for it.
type zooTestServer struct {
	url      string
	data     []byte
	requests atomic.Int64
}

func newZooTestServer(t *testing.T) *zooTestServer {
	t.Helper()
	cfgTiny, err := model.Arch("tiny", 10)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "tiny.npz")
	if err := model.SaveNPZ(p, model.Init(cfgTiny, 3)); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	s := &zooTestServer{data: data}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		if r.URL.Path != "/test/tiny.npz" {
			http.NotFound(w, r)
			return
		}
		http.ServeContent(w, r, "tiny.npz", time.Unix(1e9, 0), bytes.NewReader(data))
	}))
	t.Cleanup(srv.Close)
	s.url = srv.URL + "/"
	cat, err := zoo.Default().With(zoo.Entry{Name: "test-tiny", File: "test/tiny.npz", Arch: "tiny", Classes: 10, Data: "none", Resolution: 32})
	if err != nil {
		t.Fatal(err)
	}
	zooCatalog = cat
	t.Cleanup(func() { zooCatalog = nil })
	return s
}

func (s *zooTestServer) sha() string {
	h := sha256.Sum256(s.data)
	return hex.EncodeToString(h[:])
}

func TestZooListShowsTheCatalog(t *testing.T) {
	dir := t.TempDir()
	out, _, err := execCLIWith(t, nil, "zoo", "list", "--cache-dir", dir)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	n := zoo.Default().Len()
	if n < 12+6+1+4+285 || len(lines) != n+1 {
		t.Fatalf("%d catalog entries, %d lines", n, len(lines))
	}
	for _, name := range []string{"BiT-S-R50x1", "BiT-M-R152x4", "BiT-M-R101x3-ILSVRC2012", "BiT-M-R50x1-CIFAR10",
		"BiT-R50x1-distilled-224", "BiT-M-R152x2-teacher-384", "BiT-M-R152x4-run2-dsprites-xpos"} {
		if !strings.Contains(out, name+" ") {
			t.Errorf("list lacks %s", name)
		}
	}
	if !strings.HasPrefix(lines[0], "NAME") || !strings.Contains(lines[0], "CACHED") {
		t.Errorf("header %q", lines[0])
	}

	out, _, err = execCLIWith(t, nil, "zoo", "list", "--json", "--cache-dir", dir)
	if err != nil {
		t.Fatal(err)
	}
	var items []map[string]any
	if err := json.Unmarshal([]byte(out), &items); err != nil {
		t.Fatalf("--json is not valid JSON: %v", err)
	}
	if len(items) != n {
		t.Fatalf("%d JSON items, want %d", len(items), n)
	}
	for _, k := range []string{"name", "arch", "classes", "resolution", "cached", "size_estimate", "file", "group"} {
		if _, ok := items[0][k]; !ok {
			t.Errorf("JSON item lacks %q: %v", k, items[0])
		}
	}

	out, _, err = execCLIWith(t, nil, "zoo", "list", "--json", "--cached", "--cache-dir", dir)
	if err != nil || strings.TrimSpace(out) != "[]" {
		t.Fatalf("empty cache --cached --json: %q %v", out, err)
	}
	out, _, err = execCLIWith(t, nil, "zoo", "list", "--group", "distilled", "--cache-dir", dir)
	if err != nil || strings.Count(strings.TrimSpace(out), "\n") != 4 {
		t.Fatalf("--group distilled: %q %v", out, err)
	}
}

func TestZooPullPathVerifyRm(t *testing.T) {
	s := newZooTestServer(t)
	dir := t.TempDir()
	flags := []string{"--cache-dir", dir, "--base-url", s.url}
	out, errOut, err := execCLIWith(t, nil, append([]string{"zoo", "pull", "test-tiny"}, flags...)...)
	if err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	want := filepath.Join(dir, "test", "tiny.npz")
	if out != want+"\n" {
		t.Fatalf("stdout %q, want only the path %s", out, want)
	}
	if !strings.Contains(errOut, "pulled") || !strings.Contains(errOut, s.sha()) {
		t.Errorf("stderr %q", errOut)
	}

	out, _, err = execCLIWith(t, nil, append([]string{"zoo", "list", "--cached", "--json"}, flags...)...)
	var items []zoo.Item
	if err != nil || json.Unmarshal([]byte(out), &items) != nil || len(items) != 1 || items[0].Name != "test-tiny" || !items[0].Cached {
		t.Fatalf("list --cached: %q %v", out, err)
	}
	out, _, err = execCLIWith(t, nil, append([]string{"zoo", "path", "TEST-TINY"}, flags...)...)
	if err != nil || out != want+"\n" {
		t.Fatalf("path: %q %v", out, err)
	}
	out, _, err = execCLIWith(t, nil, append([]string{"zoo", "verify"}, flags...)...)
	if err != nil || out != "ok test-tiny "+s.sha()+"\n" {
		t.Fatalf("verify: %q %v", out, err)
	}
	_, errOut, err = execCLIWith(t, nil, append([]string{"zoo", "rm", "test-tiny"}, flags...)...)
	if err != nil || !strings.Contains(errOut, "removed test-tiny") {
		t.Fatalf("rm: %q %v", errOut, err)
	}
	_, _, err = execCLIWith(t, nil, append([]string{"zoo", "path", "test-tiny"}, flags...)...)
	if !errors.Is(err, zoo.ErrNotCached) || !strings.Contains(err.Error(), "zoo pull test-tiny") {
		t.Fatalf("path after rm: %v", err)
	}
	if _, _, err := execCLIWith(t, nil, append([]string{"zoo", "rm", "test-tiny"}, flags...)...); !errors.Is(err, zoo.ErrNotCached) {
		t.Fatalf("second rm: %v", err)
	}
}

func TestZooPathReportsSource(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		env    map[string]string
		args   []string
		want   string
		source string
	}{
		{nil, []string{"--cache-dir", dir}, dir, "flag --cache-dir"},
		{map[string]string{"BITRUN_ZOO_CACHE_DIR": dir}, nil, dir, "env BITRUN_ZOO_CACHE_DIR"},
		{map[string]string{"BITRUN_CACHE_DIR": dir}, nil, dir, "env BITRUN_CACHE_DIR"},
	} {
		t.Run(tc.source, func(t *testing.T) {
			t.Setenv("XDG_CONFIG_HOME", t.TempDir()) // no user config file
			for _, k := range []string{"BITRUN_ZOO_CACHE_DIR", "BITRUN_CACHE_DIR"} {
				t.Setenv(k, "") // restored after the test
				os.Unsetenv(k)
			}
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			out, errOut, err := execCLIWith(t, nil, append([]string{"zoo", "path"}, tc.args...)...)
			if err != nil || out != tc.want+"\n" || !strings.Contains(errOut, tc.source) {
				t.Fatalf("out %q err %q %v", out, errOut, err)
			}
		})
	}
	// From the config file.
	conf := writeTestFile(t, t.TempDir(), "config.yaml", "zoo:\n  cache_dir: "+dir+"\n")
	out, errOut, err := execCLIWith(t, nil, "zoo", "path", "--config", conf)
	if err != nil || out != dir+"\n" || !strings.Contains(errOut, "config "+conf) {
		t.Fatalf("config file: out %q err %q %v", out, errOut, err)
	}
}

func TestZooOfflineCLINeverConnects(t *testing.T) {
	s := newZooTestServer(t)
	dir := t.TempDir()
	_, _, err := execCLIWith(t, nil, "zoo", "pull", "test-tiny", "--offline", "--cache-dir", dir, "--base-url", s.url)
	if !errors.Is(err, zoo.ErrOffline) {
		t.Fatalf("--offline: %v", err)
	}
	t.Setenv("BITRUN_ZOO_OFFLINE", "true")
	_, _, err = execCLIWith(t, nil, "zoo", "pull", "test-tiny", "--cache-dir", dir, "--base-url", s.url)
	if !errors.Is(err, zoo.ErrOffline) {
		t.Fatalf("BITRUN_ZOO_OFFLINE: %v", err)
	}
	if s.requests.Load() != 0 {
		t.Fatalf("offline pulls made %d requests", s.requests.Load())
	}
}

func TestZooModelFlagResolvesAndPulls(t *testing.T) {
	s := newZooTestServer(t)
	dir := t.TempDir()
	var got string
	probe := func() *cobra.Command {
		var r weightsRef
		c := &cobra.Command{Use: "probe", RunE: func(cmd *cobra.Command, _ []string) error {
			if err := r.complete(cmd); err != nil {
				return err
			}
			var err error
			got, err = r.resolve(cmd.Context())
			return err
		}}
		addWeightsFlags(c, &r)
		return c
	}
	t.Setenv("BITRUN_ZOO_BASE_URL", s.url)
	// Offline and not cached: a clear error, no request.
	_, _, err := execCLIWith(t, []*cobra.Command{probe()}, "probe", "--model", "test-tiny", "--offline", "--cache-dir", dir)
	if !errors.Is(err, zoo.ErrOffline) || s.requests.Load() != 0 {
		t.Fatalf("offline --model: %v (%d requests)", err, s.requests.Load())
	}
	// It says how to go on without a network, as zoo pull does.
	if !strings.Contains(err.Error(), "--base-url") || !strings.Contains(err.Error(), "bitrun zoo import FILE --name test-tiny") {
		t.Errorf("offline --model: %v, want the offline hint", err)
	}
	// Online: pulled, progress on stderr, nothing on stdout.
	out, _, err := execCLIWith(t, []*cobra.Command{probe()}, "probe", "--model", "test-tiny", "--cache-dir", dir)
	if err != nil || got != filepath.Join(dir, "test", "tiny.npz") || out != "" {
		t.Fatalf("--model: %q %q %v", got, out, err)
	}
	// Then offline from the cache.
	n := s.requests.Load()
	_, _, err = execCLIWith(t, []*cobra.Command{probe()}, "probe", "--model", "test-tiny", "--offline", "--cache-dir", dir)
	if err != nil || s.requests.Load() != n {
		t.Fatalf("cached offline --model: %v", err)
	}
	if _, _, err := execCLIWith(t, []*cobra.Command{probe()}, "probe", "--model", "BiT-M-R50x2", "--offline", "--cache-dir", dir); !errors.Is(err, zoo.ErrNotFound) || !strings.Contains(err.Error(), "BiT-M-R50x1") {
		t.Fatalf("unknown --model: %v", err)
	}
	var ue usageError
	if _, _, err := execCLIWith(t, []*cobra.Command{probe()}, "probe", "--model", "x", "--weights", "y"); !errors.As(err, &ue) {
		t.Fatalf("--model with --weights: %v", err)
	}
}

func TestZooPullONNXAndImport(t *testing.T) {
	s := newZooTestServer(t)
	dir := t.TempDir()
	out, errOut, err := execCLIWith(t, nil, "zoo", "pull", "test-tiny", "--onnx", "--cache-dir", dir, "--base-url", s.url)
	if err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	onnx := filepath.Join(dir, "test", "tiny.onnx")
	if len(lines) != 2 || lines[1] != onnx {
		t.Fatalf("stdout %q", out)
	}
	if st, err := os.Stat(onnx); err != nil || st.Size() < int64(len(s.data))/2 {
		t.Fatalf("ONNX export: %v", err)
	}

	// Import into another cache, air-gapped.
	other := t.TempDir()
	npz := filepath.Join(dir, "test", "tiny.npz")
	if _, _, err := execCLIWith(t, nil, "zoo", "import", npz, "--cache-dir", other); !errors.As(err, new(usageError)) {
		t.Fatalf("import without --name: %v", err)
	}
	out, _, err = execCLIWith(t, nil, "zoo", "import", npz, "--name", "test-tiny", "--cache-dir", other, "--sha256", s.sha())
	if err != nil || out != filepath.Join(other, "test", "tiny.npz")+"\n" {
		t.Fatalf("import: %q %v", out, err)
	}
	out, _, err = execCLIWith(t, nil, "zoo", "pull", "test-tiny", "--offline", "--cache-dir", other)
	if err != nil || strings.TrimSpace(out) != filepath.Join(other, "test", "tiny.npz") {
		t.Fatalf("offline pull after import: %q %v", out, err)
	}
	if _, _, err := execCLIWith(t, nil, "zoo", "pull", "test-tiny", "--sha256", "nothex", "--cache-dir", other); !errors.As(err, new(usageError)) {
		t.Fatalf("bad --sha256: %v", err)
	}
}

func TestZooProgressPlainLines(t *testing.T) {
	var b bytes.Buffer
	report := zooProgress(&b) // not a terminal: plain lines
	const total = 1000
	report(zoo.Progress{Name: "m", File: "m.npz", Phase: zoo.PhaseDownload, Done: 200, Resumed: 200, Total: total, Attempt: 1})
	for done := int64(210); done <= total; done += 10 {
		report(zoo.Progress{Name: "m", File: "m.npz", Phase: zoo.PhaseDownload, Done: done, Resumed: 200, Total: total, Attempt: 1})
	}
	report(zoo.Progress{Name: "m", File: "m.npz", Phase: zoo.PhaseRetry, Attempt: 1, Err: errors.New("boom"), Wait: time.Second})
	report(zoo.Progress{Name: "m", File: "m.npz", Phase: zoo.PhaseCheck, Total: -1})
	out := b.String()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	// resuming + one line per 10% from 20% to 100% + retry + check
	if len(lines) != 1+9+2 {
		t.Fatalf("%d lines:\n%s", len(lines), out)
	}
	for _, want := range []string{"resuming m.npz at 200 B", " 20% 200 B / 1000 B", "100% 1000 B / 1000 B", "attempt 1 failed (boom); retrying in 1s", "checking"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "\r") {
		t.Error("carriage returns in non-terminal output")
	}
}

// The zoo's logger takes the log level from wherever it was set: the
// flag, BITRUN_LOG_LEVEL or the config file (only the flag counted).
func TestZooLoggerLevel(t *testing.T) {
	cmd := parsedCommand(t, "zoo")
	if zooLogger(cmd).Enabled(context.Background(), slog.LevelInfo) {
		t.Error("info enabled by default; want warnings and errors only")
	}
	t.Setenv("BITRUN_LOG_LEVEL", "debug")
	cmd = parsedCommand(t, "zoo")
	if !zooLogger(cmd).Enabled(context.Background(), slog.LevelDebug) {
		t.Error("BITRUN_LOG_LEVEL=debug: debug not enabled")
	}
}
