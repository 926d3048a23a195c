package serve_test

import (
	"context"
	"encoding/json"
	"fmt"
	"image/color"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bitrun/bitrun/api"
	"github.com/bitrun/bitrun/client"
	"github.com/bitrun/bitrun/internal/servetest"
	"github.com/bitrun/bitrun/internal/testwait"
	"github.com/bitrun/bitrun/serve"
)

// writeVersion puts the colour model (real ONNX) at dir/model/version/model.onnx.
func writeVersion(t *testing.T, dir, model, version string) {
	t.Helper()
	requireORT(t)
	d := filepath.Join(dir, model, version)
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	p, err := writeColorModel(t.TempDir(), 8)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d, "model.onnx"), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func startRepo(t *testing.T, dir string, opts serve.RepositoryOptions) (*serve.Repository, *client.Client, string) {
	t.Helper()
	srv := servetest.NewServer(t, serve.Config{})
	opts.Options.Workers = 1
	repo, err := serve.OpenRepository(dir, srv, opts)
	if err != nil {
		t.Logf("open repository: %v", err)
	}
	if repo == nil {
		t.Fatal("no repository")
	}
	ts := servetest.HTTP(t, srv)
	t.Cleanup(func() { repo.Close() }) // runs first, as before
	return repo, servetest.Client(t, ts.URL, 32), ts.URL
}

// TestRepositoryReloadUnderLoad (issue 14): clients keep sending predict
// and infer requests to two models while one of them is reloaded with a
// new version, given a broken version, and the other is unloaded and
// loaded again. Every request to a model that stayed loaded succeeds, and
// answers switch to the new version within the reload.
func TestRepositoryReloadUnderLoad(t *testing.T) {
	dir := t.TempDir()
	writeVersion(t, dir, "colors", "1")
	writeVersion(t, dir, "other", "1")
	_, cl, base := startRepo(t, dir, serve.RepositoryOptions{})
	ctx := context.Background()
	img := pngBytes(solid(8, 8, color.RGBA{B: 255, A: 255}))
	x := make([]float32, 3*8*8)

	var stop atomic.Bool
	var colorsFail, colorsOK, otherOK, otherDown atomic.Int64
	var lastVersion atomic.Value
	lastVersion.Store("1")
	var failures sync.Map
	var wg sync.WaitGroup
	for i := range 6 {
		wg.Go(func() {
			for n := 0; !stop.Load(); n++ {
				var ver string
				var err error
				cur := lastVersion.Load().(string) // the version serving when the request starts
				if (i+n)%2 == 0 {
					var r *client.PredictResponse
					if r, err = cl.Predict(ctx, "colors", img, 1); err == nil {
						ver = r.Version
						if r.Predictions[0].Label != "blue" {
							err = fmt.Errorf("top-1 %q", r.Predictions[0].Label)
						}
					}
				} else {
					var r *client.InferResponse
					if r, err = cl.Infer(ctx, "colors", &client.InferRequest{Inputs: []client.Tensor{api.BinaryFP32("image", []int64{1, 3, 8, 8}, x)}}); err == nil {
						ver = r.ModelVersion
					}
				}
				if err != nil {
					colorsFail.Add(1)
					failures.Store(err.Error(), true)
					continue
				}
				colorsOK.Add(1)
				if ver < cur {
					failures.Store("a request started after version "+cur+" took over answered from version "+ver, true)
					colorsFail.Add(1)
				}
				// "other" is unloaded for a while: 404s are expected there.
				if _, err := cl.Predict(ctx, "other", img, 1); err == nil {
					otherOK.Add(1)
				} else if client.StatusCode(err) == 404 {
					otherDown.Add(1)
				} else {
					failures.Store("other: "+err.Error(), true)
					colorsFail.Add(1)
				}
			}
		})
	}
	steady := func() {
		n := colorsOK.Load()
		for colorsOK.Load() < n+30 {
			time.Sleep(5 * time.Millisecond)
		}
	}
	steady()

	// 1. A new version: loaded, warmed, then it takes the traffic.
	writeVersion(t, dir, "colors", "2")
	res, err := cl.LoadModel(ctx, "colors")
	if err != nil || fmt.Sprint(res.Versions) != "[2]" {
		t.Fatalf("load v2: %+v %v", res, err)
	}
	lastVersion.Store("2")
	if r, err := cl.Predict(ctx, "colors", img, 1); err != nil || r.Version != "2" {
		t.Fatalf("after the reload: %+v %v", r, err)
	}
	steady()

	// 2. A broken version: the load fails with a 4xx and the reason, v2 serves on.
	if err := os.MkdirAll(filepath.Join(dir, "colors", "3"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "colors", "3", "model.onnx"), []byte("not an onnx model"), 0o644)
	if _, err := cl.LoadModel(ctx, "colors"); client.StatusCode(err) != 400 || !strings.Contains(err.Error(), "version 3") {
		t.Fatalf("broken v3: %v", err)
	}
	idx, err := cl.RepositoryIndex(ctx, false)
	if err != nil || !strings.Contains(fmt.Sprint(idx), "{colors 2 READY") || !strings.Contains(fmt.Sprint(idx), "version 3") {
		t.Fatalf("index after a failed load: %+v %v", idx, err)
	}
	steady()

	// 3. Unload and load another model while the first keeps serving.
	if _, err := cl.UnloadModel(ctx, "other"); err != nil {
		t.Fatal(err)
	}
	if idx, _ := cl.RepositoryIndex(ctx, false); !strings.Contains(fmt.Sprint(idx), "{other  UNAVAILABLE unloaded}") {
		t.Fatalf("index after unload: %+v", idx)
	}
	steady()
	if _, err := cl.LoadModel(ctx, "other"); err != nil {
		t.Fatal(err)
	}
	os.RemoveAll(filepath.Join(dir, "colors", "3"))
	steady()
	stop.Store(true)
	wg.Wait()
	failures.Range(func(k, _ any) bool { t.Errorf("failure: %v", k); return true })
	if colorsFail.Load() != 0 {
		t.Fatalf("%d failed requests to models that stayed loaded (%d ok)", colorsFail.Load(), colorsOK.Load())
	}
	if otherDown.Load() == 0 || otherOK.Load() == 0 {
		t.Errorf("other: %d ok, %d 404 while unloaded", otherOK.Load(), otherDown.Load())
	}
	// A failed load is counted in the metrics.
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var sb strings.Builder
	buf := make([]byte, 1<<20)
	for {
		n, err := resp.Body.Read(buf)
		sb.Write(buf[:n])
		if err != nil {
			break
		}
	}
	if !strings.Contains(sb.String(), `bitrun_model_loads_total{model="colors",result="error"} 1`) {
		t.Error("metrics lack the failed load")
	}
	t.Logf("%d requests to colors, %d to other (%d 404 while unloaded), 0 failed", colorsOK.Load(), otherOK.Load()+otherDown.Load(), otherDown.Load())
}

// TestRepositoryLayout: version policies, per-model config, polling, and
// 4xx errors for names and paths that leave the repository or lack a model.
func TestRepositoryLayout(t *testing.T) {
	dir := t.TempDir()
	for _, v := range []string{"1", "2", "10"} {
		writeVersion(t, dir, "all", v)
		writeVersion(t, dir, "two", v)
	}
	os.WriteFile(filepath.Join(dir, "all", "config.json"), []byte(`{"version_policy":{"all":{}},"labels":["r","g","b"],"max_batch_size":4}`), 0o644)
	os.WriteFile(filepath.Join(dir, "two", "config.json"), []byte(`{"version_policy":{"latest":{"num_versions":2}}}`), 0o644)
	writeVersion(t, dir, "pick", "1")
	writeVersion(t, dir, "pick", "2")
	os.WriteFile(filepath.Join(dir, "pick", "config.json"), []byte(`{"version_policy":{"specific":{"versions":[1]}}}`), 0o644)
	os.MkdirAll(filepath.Join(dir, "empty", "1"), 0o755) // a version folder without a model file
	outside := t.TempDir()
	writeVersion(t, outside, "evil", "1")
	os.Symlink(filepath.Join(outside, "evil"), filepath.Join(dir, "evil"))             // model folder leaving the repository
	os.MkdirAll(filepath.Join(dir, "sneaky"), 0o755)                                   //
	os.Symlink(filepath.Join(outside, "evil", "1"), filepath.Join(dir, "sneaky", "1")) // version folder leaving it
	os.WriteFile(filepath.Join(dir, "badcfg.json"), nil, 0o644)                        // a file, not a model
	os.MkdirAll(filepath.Join(dir, "badcfg", "1"), 0o755)
	os.WriteFile(filepath.Join(dir, "badcfg", "config.json"), []byte(`{"max_batch":4}`), 0o644)

	_, cl, base := startRepo(t, dir, serve.RepositoryOptions{Poll: 50 * time.Millisecond})
	ctx := context.Background()
	models, err := cl.Models(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(models); got != "[{all true [1 2 10]} {pick true [1]} {two true [2 10]}]" {
		t.Fatalf("models %s", got)
	}
	md, err := cl.Metadata(ctx, "all")
	if err != nil || md.Version != "10" || md.Labels[0] != "r" || md.MaxBatch != 4 {
		t.Fatalf("all: %+v %v", md, err)
	}
	for _, tc := range []struct {
		path string
		code int
		msg  string
	}{
		{"/v2/repository/models/empty/load", 400, "no model file"},
		{"/v2/repository/models/evil/load", 400, "outside the repository"},
		{"/v2/repository/models/sneaky/load", 400, "outside the repository"},
		{"/v2/repository/models/badcfg/load", 400, "unknown field"},
		{"/v2/repository/models/%2e%2e/load", 400, "invalid model name"},
		{"/v2/repository/models/..%2f..%2fetc/load", 400, "invalid model name"},
		{"/v2/repository/models/.hidden/unload", 400, "invalid model name"},
		{"/v2/repository/models/ghost/load", 404, "no folder"},
		{"/v2/repository/models/ghost/unload", 404, "not loaded"},
	} {
		resp, b := do(t, "POST", base+tc.path, "", nil, nil)
		var e errorJSON
		if resp.StatusCode != tc.code || json.Unmarshal(b, &e) != nil || !strings.Contains(e.Error, tc.msg) {
			t.Errorf("%s: %d %s, want %d %q", tc.path, resp.StatusCode, b, tc.code, tc.msg)
		}
	}
	// A name the repository cannot hold, or one with no folder, is refused
	// before it becomes a metric label or an index entry (each distinct name
	// would be a new series and entry).
	_, metrics := do(t, "GET", base+"/metrics", "", nil, nil)
	if strings.Contains(string(metrics), `bitrun_model_loads_total{model=".`) || strings.Contains(string(metrics), `bitrun_model_loads_total{model="ghost"`) ||
		!strings.Contains(string(metrics), `bitrun_model_loads_total{model="empty",result="error"}`) {
		t.Errorf("load metrics: invalid names as labels, or the failed load of empty missing:\n%s", metrics)
	}
	// Load-time overrides are refused, not ignored; an empty body or empty
	// parameters load.
	for _, tc := range []struct {
		body string
		code int
		msg  string
	}{
		{`{"parameters":{"config":"{\"max_batch\":1}"}}`, 400, "load parameters config are not supported"},
		{`{"params":{}}`, 400, "unknown field"},
		{`{"parameters":{}}`, 200, ""},
		{``, 200, ""},
	} {
		resp, b := do(t, "POST", base+"/v2/repository/models/all/load", "application/json", []byte(tc.body), nil)
		if resp.StatusCode != tc.code || !strings.Contains(string(b), tc.msg) {
			t.Errorf("load with %s: %d %s, want %d %q", tc.body, resp.StatusCode, b, tc.code, tc.msg)
		}
	}
	// Polls in between do not forget a folder whose load failed, a symlink
	// leading outside included (CI once caught a poll dropping evil here).
	time.Sleep(3 * 50 * time.Millisecond)
	idx, _ := cl.RepositoryIndex(ctx, false)
	if s := fmt.Sprint(idx); !strings.Contains(s, "{empty  UNAVAILABLE") || !strings.Contains(s, "{evil  UNAVAILABLE") || strings.Contains(s, "ghost") {
		t.Errorf("index %s", s)
	}
	if ready, _ := cl.RepositoryIndex(ctx, true); len(ready) != 6 {
		t.Errorf("ready index %+v", ready)
	}

	// Polling picks up a new version and a removed model.
	writeVersion(t, dir, "two", "11")
	os.RemoveAll(filepath.Join(dir, "pick"))
	modelsAre := func(want string) func() error {
		return func() error {
			models, _ := cl.Models(ctx)
			if got := fmt.Sprint(models); got != want {
				return fmt.Errorf("polling: models %s, want %s", got, want)
			}
			return nil
		}
	}
	testwait.Until(t, 10*time.Second, 20*time.Millisecond, modelsAre("[{all true [1 2 10]} {two true [10 11]}]"))
	// A removed folder whose load had failed leaves the index too.
	os.RemoveAll(filepath.Join(dir, "empty"))
	testwait.Until(t, 10*time.Second, 20*time.Millisecond, func() error {
		if idx, _ := cl.RepositoryIndex(ctx, false); strings.Contains(fmt.Sprint(idx), "{empty ") {
			return fmt.Errorf("index still lists the removed folder empty: %+v", idx)
		}
		return nil
	})
	// A removed folder put back is loaded again (only an unload through
	// the API keeps a model out).
	writeVersion(t, dir, "pick", "1")
	testwait.Until(t, 10*time.Second, 20*time.Millisecond, modelsAre("[{all true [1 2 10]} {pick true [1]} {two true [10 11]}]"))
}

// TestRepositoryLoadingState: while a load runs, the index answers at once
// and lists the model as LOADING (the versions it serves stay READY); then
// READY. While an unload drains, its versions are UNLOADING.
func TestRepositoryLoadingState(t *testing.T) {
	dir := t.TempDir()
	writeVersion(t, dir, "colors", "1")
	gate := make(chan struct{})
	open := func(path string, o serve.Options) (*serve.Classifier, error) {
		if strings.Contains(path, "slow") {
			<-gate
		}
		return serve.Open(path, o)
	}
	repo, _, _ := startRepo(t, dir, serve.RepositoryOptions{Open: open})
	writeVersion(t, dir, "slow", "1")
	loaded := make(chan error, 1)
	go func() {
		_, err := repo.Load(context.Background(), "slow")
		loaded <- err
	}()
	testwait.Until(t, 5*time.Second, 10*time.Millisecond, func() error {
		var got []api.RepositoryModel
		testwait.Returns(t, 2*time.Second, "Index during a load", func() error {
			got = repo.Index(false)
			return nil
		})
		s := fmt.Sprint(got)
		if !strings.Contains(s, "{slow  LOADING") {
			return fmt.Errorf("no LOADING entry: %s", s)
		}
		if !strings.Contains(s, "{colors 1 READY") {
			t.Errorf("index during the load: %s", s)
		}
		return nil
	})
	close(gate)
	if err := <-loaded; err != nil {
		t.Fatal(err)
	}
	if s := fmt.Sprint(repo.Index(true)); !strings.Contains(s, "{slow 1 READY") {
		t.Errorf("index after the load: %s", s)
	}
}
