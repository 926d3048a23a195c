package zoo

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bitrun/bitrun/model"
)

func TestPullDownloadsVerifiesAndRecords(t *testing.T) {
	data := tinyBytes(t)
	s := newServer(t, map[string][]byte{testFile: data})
	dir := t.TempDir()
	o := s.opts(t, dir)
	var phases []Phase
	o.Progress = func(p Progress) {
		if len(phases) == 0 || phases[len(phases)-1] != p.Phase {
			phases = append(phases, p.Phase)
		}
	}
	res, err := Pull(context.Background(), "TEST-TINY", o) // names ignore case
	if err != nil {
		t.Fatal(err)
	}
	if res.Path != filepath.Join(dir, "test", "tiny.npz") || res.Cached || !res.Recorded {
		t.Fatalf("result %+v", res)
	}
	if res.SHA256 != sha(data) || res.Size != int64(len(data)) || res.Downloaded != int64(len(data)) {
		t.Fatalf("digest/size %s %d %d, want %s %d", res.SHA256, res.Size, res.Downloaded, sha(data), len(data))
	}
	got, _ := os.ReadFile(res.Path)
	if string(got) != string(data) {
		t.Fatal("cached file differs from the served one")
	}
	if exists(res.Path+".part") || exists(res.Path+".part.json") {
		t.Fatal("leftover .part files")
	}
	r, ok, err := cache{dir}.record(testFile)
	if err != nil || !ok || r.SHA256 != sha(data) || r.Name != "test-tiny" {
		t.Fatalf("lock file record %+v %v %v", r, ok, err)
	}
	for _, want := range []Phase{PhaseDownload, PhaseVerify, PhaseCheck, PhaseDone} {
		found := false
		for _, p := range phases {
			found = found || p == want
		}
		if !found {
			t.Errorf("no %s progress in %v", want, phases)
		}
	}

	// A second pull is served from the cache without a request.
	before := s.requests.Load()
	res2, err := Pull(context.Background(), "test-tiny", o)
	if err != nil {
		t.Fatal(err)
	}
	if !res2.Cached || res2.Downloaded != 0 || s.requests.Load() != before {
		t.Fatalf("second pull: %+v, %d requests", res2, s.requests.Load()-before)
	}
}

func TestResumeAfterConnectionCut(t *testing.T) {
	data := tinyBytes(t)
	cut := len(data) * 2 / 5
	for _, tc := range []struct {
		name     string
		attempts int // 1: the first Pull fails and a second Pull resumes
	}{{"rerun", 1}, {"retry", 3}} {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t, map[string][]byte{testFile: data})
			s.setHook(func(w http.ResponseWriter, r *http.Request, n int64) bool {
				if n == 1 {
					s.serve(w, r, data, cut)
					return true
				}
				return false
			})
			dir := t.TempDir()
			o := s.opts(t, dir)
			o.MaxAttempts = tc.attempts
			res, err := Pull(context.Background(), "test-tiny", o)
			if tc.attempts == 1 {
				if err == nil {
					t.Fatal("pull over a cut connection succeeded with one attempt")
				}
				part := filepath.Join(dir, "test", "tiny.npz.part")
				if n, _ := fileSize(part); n != int64(cut) {
					t.Fatalf(".part holds %d bytes, want %d", n, cut)
				}
				if exists(filepath.Join(dir, "test", "tiny.npz")) {
					t.Fatal("a partial file sits at the final path")
				}
				res, err = Pull(context.Background(), "test-tiny", o)
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.SHA256 != sha(data) {
				t.Fatalf("digest %s, want %s", res.SHA256, sha(data))
			}
			if served := s.served.Load(); float64(served) >= 1.1*float64(len(data)) {
				t.Fatalf("served %d bytes for a %d-byte file", served, len(data))
			}
			rs := s.rangeHeaders()
			if len(rs) != 2 || rs[1] != "bytes="+itoa(cut)+"-" {
				t.Fatalf("range headers %q", rs)
			}
		})
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestRestartFromZeroWhenServerIgnoresRange(t *testing.T) {
	data := tinyBytes(t)
	s := newServer(t, map[string][]byte{testFile: data})
	s.set(func(s *server) { s.ignoreRange = true })
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "test"), 0o755); err != nil {
		t.Fatal(err)
	}
	// A stale half file: appending the full body to it would corrupt the result.
	if err := os.WriteFile(filepath.Join(dir, "test", "tiny.npz.part"), data[:len(data)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := Pull(context.Background(), "test-tiny", s.opts(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	if res.SHA256 != sha(data) || res.Size != int64(len(data)) {
		t.Fatalf("got %s (%d bytes), want %s (%d)", res.SHA256, res.Size, sha(data), len(data))
	}
	if rs := s.rangeHeaders(); len(rs) != 1 || rs[0] == "" {
		t.Fatalf("want one ranged request, got %q", rs)
	}
}

func TestStallIsRetried(t *testing.T) {
	data := tinyBytes(t)
	for _, tc := range []struct {
		name  string
		stall func(w http.ResponseWriter, r *http.Request)
	}{
		{"mid-body", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", itoa(len(data)))
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write(data[:len(data)/10])
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		}},
		{"before-headers", func(w http.ResponseWriter, r *http.Request) {
			<-r.Context().Done()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t, map[string][]byte{testFile: data})
			s.setHook(func(w http.ResponseWriter, r *http.Request, n int64) bool {
				if n == 1 {
					tc.stall(w, r)
					return true
				}
				return false
			})
			o := s.opts(t, t.TempDir())
			o.StallTimeout = 300 * time.Millisecond
			o.MaxAttempts = 5
			var retries []error
			o.Progress = func(p Progress) {
				if p.Phase == PhaseRetry {
					retries = append(retries, p.Err)
				}
			}
			start := time.Now()
			res, err := Pull(context.Background(), "test-tiny", o)
			if err != nil {
				t.Fatal(err)
			}
			if res.SHA256 != sha(data) {
				t.Fatal("wrong digest after retry")
			}
			// Under heavy machine load a retry may stall too: at least one, caused by the stall.
			if s.requests.Load() < 2 || len(retries) < 1 || !errors.Is(retries[0], ErrStalled) {
				t.Fatalf("requests %d, retries %v", s.requests.Load(), retries)
			}
			if time.Since(start) > 8*time.Second {
				t.Fatalf("stall detection took %v", time.Since(start))
			}
		})
	}
}

func TestStallGivesUpAfterMaxAttempts(t *testing.T) {
	s := newServer(t, nil)
	s.setHook(func(w http.ResponseWriter, r *http.Request, n int64) bool {
		<-r.Context().Done()
		return true
	})
	o := s.opts(t, t.TempDir())
	o.StallTimeout = 50 * time.Millisecond
	o.MaxAttempts = 2
	_, err := Pull(context.Background(), "test-tiny", o)
	if !errors.Is(err, ErrStalled) || !strings.Contains(err.Error(), "after 2 attempts") {
		t.Fatalf("err = %v", err)
	}
	if s.requests.Load() != 2 {
		t.Fatalf("%d requests, want 2", s.requests.Load())
	}
}

func TestChecksumMismatch(t *testing.T) {
	data := tinyBytes(t)
	bad := append([]byte(nil), data...)
	bad[len(bad)/2] ^= 0x01
	for _, tc := range []struct {
		name   string
		setup  func(t *testing.T, o *Options, dir string)
		source string
	}{
		{"catalog pin", func(t *testing.T, o *Options, dir string) {
			e := testEntry()
			e.SHA256 = sha(data)
			cat, err := NewCatalog(e)
			if err != nil {
				t.Fatal(err)
			}
			o.Catalog = cat
		}, "catalog"},
		{"option pin", func(t *testing.T, o *Options, dir string) { o.SHA256 = "sha256:" + sha(data) }, "--sha256"},
		{"lock file record", func(t *testing.T, o *Options, dir string) {
			err := cache{dir}.setRecord(context.Background(), testFile, &record{Name: "test-tiny", SHA256: sha(data), Size: int64(len(data))})
			if err != nil {
				t.Fatal(err)
			}
		}, LockFileName},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t, map[string][]byte{testFile: bad})
			dir := t.TempDir()
			o := s.opts(t, dir)
			tc.setup(t, &o, dir)
			_, err := Pull(context.Background(), "test-tiny", o)
			var ce *ChecksumError
			if !errors.Is(err, ErrChecksum) || !errors.As(err, &ce) {
				t.Fatalf("err = %v, want a checksum error", err)
			}
			msg := err.Error()
			if ce.Want != sha(data) || ce.Got != sha(bad) || !strings.Contains(msg, sha(data)) || !strings.Contains(msg, sha(bad)) ||
				!strings.Contains(msg, "test-tiny") || !strings.Contains(msg, tc.source) {
				t.Fatalf("message %q does not name want %s, got %s and source %s", msg, sha(data), sha(bad), tc.source)
			}
			final := filepath.Join(dir, "test", "tiny.npz")
			if exists(final) || exists(final+".part") {
				t.Fatal("a corrupt file was left in the cache")
			}
			if s.requests.Load() != 1 {
				t.Fatalf("%d requests: a checksum mismatch must not be retried", s.requests.Load())
			}
		})
	}
}

func TestReferenceDigestConflict(t *testing.T) {
	o := Options{Catalog: mustCatalog(t, testEntry()), CacheDir: t.TempDir(), Offline: true,
		SHA256: strings.Repeat("a", 64)}
	_, err := Pull(context.Background(), "test-tiny@sha256:"+strings.Repeat("b", 64), o)
	if err == nil || !strings.Contains(err.Error(), "pins") {
		t.Fatalf("err = %v", err)
	}
}

func mustCatalog(t testing.TB, es ...Entry) *Catalog {
	t.Helper()
	c, err := NewCatalog(es...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestHTTPErrors(t *testing.T) {
	for _, tc := range []struct {
		code     int
		requests int64
		want     []string
	}{
		{404, 1, []string{"404 Not Found", "/test/tiny.npz", "base URL"}},
		{403, 1, []string{"403 Forbidden", "/test/tiny.npz"}},
		{500, 3, []string{"500 Internal Server Error", "/test/tiny.npz", "after 3 attempts"}},
		{503, 3, []string{"503 Service Unavailable"}},
	} {
		t.Run(http.StatusText(tc.code), func(t *testing.T) {
			s := newServer(t, nil)
			s.setHook(func(w http.ResponseWriter, r *http.Request, n int64) bool {
				http.Error(w, "nope", tc.code)
				return true
			})
			dir := t.TempDir()
			o := s.opts(t, dir)
			var last Progress
			o.Progress = func(p Progress) { last = p }
			_, err := Pull(context.Background(), "test-tiny", o)
			if last.Phase != PhaseFailed || last.Err != err {
				t.Errorf("last progress %+v, want PhaseFailed with the error", last)
			}
			var he *HTTPError
			if !errors.As(err, &he) || he.StatusCode != tc.code {
				t.Fatalf("err = %v, want an HTTPError %d", err, tc.code)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if !strings.HasPrefix(err.Error(), "zoo: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
			if got := s.requests.Load(); got != tc.requests {
				t.Errorf("%d requests, want %d", got, tc.requests)
			}
			if exists(filepath.Join(dir, "test", "tiny.npz")) {
				t.Error("file at the final path after an HTTP error")
			}
		})
	}
}

func TestConcurrentPullsDownloadOnce(t *testing.T) {
	data := tinyBytes(t)
	s := newServer(t, map[string][]byte{testFile: data})
	const n = 4
	// The one download is held until every other puller waits on the lock.
	release := make(chan struct{})
	s.setHook(func(w http.ResponseWriter, r *http.Request, k int64) bool {
		if k == 1 {
			select {
			case <-release:
			case <-time.After(10 * time.Second):
			}
		}
		return false
	})
	dir := t.TempDir()
	o := s.opts(t, dir)
	var waiting atomic.Int64
	o.Progress = func(p Progress) {
		if p.Phase == PhaseWait && waiting.Add(1) == n-1 {
			close(release)
		}
	}
	var wg sync.WaitGroup
	results := make([]Result, n)
	errs := make([]error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = Pull(context.Background(), "test-tiny", o)
		}()
	}
	wg.Wait()
	downloads := 0
	for i := 0; i < n; i++ {
		if errs[i] != nil {
			t.Fatalf("pull %d: %v", i, errs[i])
		}
		if results[i].SHA256 != sha(data) {
			t.Fatalf("pull %d: digest %s", i, results[i].SHA256)
		}
		if results[i].Downloaded > 0 {
			downloads++
		}
	}
	if s.requests.Load() != 1 || downloads != 1 || s.served.Load() != int64(len(data)) {
		t.Fatalf("%d requests, %d downloads, %d bytes served; want one download", s.requests.Load(), downloads, s.served.Load())
	}
	if got := waiting.Load(); got != n-1 {
		t.Fatalf("%d pullers waited for the lock, want %d", got, n-1)
	}
}

func TestOfflineNeverConnects(t *testing.T) {
	hit := newServer(t, nil)
	hit.setHook(func(w http.ResponseWriter, r *http.Request, n int64) bool {
		t.Errorf("offline pull made a request: %s", r.URL)
		return true
	})
	dir := t.TempDir()
	o := hit.opts(t, dir)
	o.Offline = true
	o.Client = &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		t.Errorf("offline pull used the HTTP client for %s", r.URL)
		return nil, errors.New("no")
	})}
	_, err := Pull(context.Background(), "test-tiny", o)
	if !errors.Is(err, ErrOffline) || !strings.Contains(err.Error(), "test-tiny") || !strings.Contains(err.Error(), dir) {
		t.Fatalf("err = %v, want ErrOffline naming the model and cache", err)
	}

	// A cached model works offline.
	data := tinyBytes(t)
	if err := os.MkdirAll(filepath.Join(dir, "test"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "test", "tiny.npz"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := Pull(context.Background(), "test-tiny", o)
	if err != nil || !res.Cached || res.SHA256 != sha(data) {
		t.Fatalf("offline cached pull: %+v, %v", res, err)
	}
	if hit.requests.Load() != 0 {
		t.Fatal("server was contacted")
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestCancelLeavesResumablePart(t *testing.T) {
	data := tinyBytes(t)
	s := newServer(t, map[string][]byte{testFile: data})
	s.set(func(s *server) { s.chunk = 16 << 10 })
	s.chunkDelay.Store(int64(20 * time.Millisecond))
	dir := t.TempDir()
	o := s.opts(t, dir)
	ctx, cancel := context.WithCancelCause(context.Background())
	o.Progress = func(p Progress) {
		if p.Phase == PhaseDownload && p.Done >= int64(len(data))/4 {
			cancel(errors.New("interrupt signal received"))
		}
	}
	_, err := Pull(ctx, "test-tiny", o)
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "interrupt signal received") {
		t.Fatalf("err = %v, want context.Canceled naming the cause", err)
	}
	part := filepath.Join(dir, "test", "tiny.npz.part")
	have, ok := fileSize(part)
	if !ok || have == 0 || have >= int64(len(data)) {
		t.Fatalf(".part holds %d bytes (exists %v)", have, ok)
	}
	if exists(filepath.Join(dir, "test", "tiny.npz")) {
		t.Fatal("interrupted download reached the final path")
	}

	s.chunkDelay.Store(0)
	o.Progress = nil
	res, err := Pull(context.Background(), "test-tiny", o)
	if err != nil {
		t.Fatal(err)
	}
	if res.SHA256 != sha(data) {
		t.Fatal("resumed file is corrupt")
	}
	rs := s.rangeHeaders()
	if rs[len(rs)-1] != "bytes="+itoa(int(have))+"-" {
		t.Fatalf("resume asked for %q, want from byte %d", rs[len(rs)-1], have)
	}
	if served := s.served.Load(); float64(served) >= 1.1*float64(len(data)) {
		t.Fatalf("served %d bytes for a %d-byte file", served, len(data))
	}
}

func TestWrongArchitectureIsRejected(t *testing.T) {
	data := tinyBytes(t)
	for _, tc := range []struct {
		name string
		e    Entry
		body []byte
	}{
		{"classes", Entry{Name: "test-tiny", File: testFile, Arch: "tiny", Classes: 5}, data},
		{"arch", Entry{Name: "test-tiny", File: testFile, Arch: "small", Classes: 10}, data},
		{"not a checkpoint", testEntry(), []byte("<html>captive portal</html>")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t, map[string][]byte{testFile: tc.body})
			dir := t.TempDir()
			o := s.opts(t, dir)
			o.Catalog = mustCatalog(t, tc.e)
			_, err := Pull(context.Background(), "test-tiny", o)
			if !errors.Is(err, ErrCheckpoint) || !strings.Contains(err.Error(), "test-tiny") {
				t.Fatalf("err = %v, want ErrCheckpoint", err)
			}
			if exists(filepath.Join(dir, "test", "tiny.npz")) || exists(filepath.Join(dir, "test", "tiny.npz.part")) {
				t.Fatal("rejected file left in the cache")
			}
		})
	}
}

func TestOversizedDownloadIsRefused(t *testing.T) {
	data := tinyBytes(t)
	s := newServer(t, map[string][]byte{testFile: data})
	e := testEntry()
	e.Size = int64(len(data)) - 100
	o := s.opts(t, t.TempDir())
	o.Catalog = mustCatalog(t, e)
	_, err := Pull(context.Background(), "test-tiny", o)
	if err == nil || !strings.Contains(err.Error(), "bytes") || s.requests.Load() != 1 {
		t.Fatalf("err = %v after %d requests", err, s.requests.Load())
	}
}

func TestCorruptCacheIsReplaced(t *testing.T) {
	data := tinyBytes(t)
	s := newServer(t, map[string][]byte{testFile: data})
	dir := t.TempDir()
	o := s.opts(t, dir)
	res, err := Pull(context.Background(), "test-tiny", o)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(res.Path)
	b[100] ^= 0xff
	if err := os.WriteFile(res.Path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Verify(context.Background(), "test-tiny", o)
	if !errors.Is(err, ErrChecksum) {
		t.Fatalf("verify of a corrupted file: %v", err)
	}
	off := o
	off.Offline = true
	if _, err := Pull(context.Background(), "test-tiny", off); !errors.Is(err, ErrChecksum) {
		t.Fatalf("offline pull of a corrupted file: %v", err)
	}
	res, err = Pull(context.Background(), "test-tiny", o)
	if err != nil || res.Cached || res.SHA256 != sha(data) {
		t.Fatalf("re-pull: %+v %v", res, err)
	}
	if _, err := Verify(context.Background(), "test-tiny", o); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyRemoveAndLocate(t *testing.T) {
	data := tinyBytes(t)
	s := newServer(t, map[string][]byte{testFile: data})
	dir := t.TempDir()
	o := s.opts(t, dir)
	if _, err := Verify(context.Background(), "test-tiny", o); !errors.Is(err, ErrNotCached) {
		t.Fatalf("verify before pull: %v", err)
	}
	if _, err := Pull(context.Background(), "test-tiny", o); err != nil {
		t.Fatal(err)
	}
	it, err := Locate("test-tiny", o)
	if err != nil || !it.Cached || it.Recorded != sha(data) || it.Bytes != int64(len(data)) {
		t.Fatalf("locate: %+v %v", it, err)
	}
	items, err := List(o)
	if err != nil || len(items) != 1 || !items[0].Cached {
		t.Fatalf("list: %+v %v", items, err)
	}
	if err := Remove(context.Background(), "test-tiny", o); err != nil {
		t.Fatal(err)
	}
	if exists(it.Path) {
		t.Fatal("file still there after Remove")
	}
	if _, ok, _ := (cache{dir}).record(testFile); ok {
		t.Fatal("record still there after Remove")
	}
	if err := Remove(context.Background(), "test-tiny", o); !errors.Is(err, ErrNotCached) {
		t.Fatalf("second remove: %v", err)
	}
}

func TestImport(t *testing.T) {
	data := tinyBytes(t)
	src := filepath.Join(t.TempDir(), "copied-by-hand.npz")
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	o := Options{Catalog: mustCatalog(t, testEntry(), Entry{Name: "test-five", File: "five.npz", Arch: "tiny", Classes: 5}),
		CacheDir: dir, Offline: true}

	if _, err := Import(context.Background(), src, "test-five", o); !errors.Is(err, ErrCheckpoint) {
		t.Fatalf("import as the wrong entry: %v", err)
	}
	wrong := o
	wrong.SHA256 = strings.Repeat("0", 64)
	if _, err := Import(context.Background(), src, "test-tiny", wrong); !errors.Is(err, ErrChecksum) {
		t.Fatalf("import with a wrong pin: %v", err)
	}
	if exists(filepath.Join(dir, "test", "tiny.npz")) {
		t.Fatal("failed import left a file")
	}
	res, err := Import(context.Background(), src, "test-tiny", o)
	if err != nil || res.SHA256 != sha(data) {
		t.Fatalf("import: %+v %v", res, err)
	}
	// Now usable offline, verified against the recorded digest.
	if res, err := Pull(context.Background(), "test-tiny", o); err != nil || !res.Cached {
		t.Fatalf("pull after import: %+v %v", res, err)
	}
	// Importing a different file over the record is refused.
	cfg, _ := model.Arch("tiny", 10)
	src2 := filepath.Join(t.TempDir(), "other.npz")
	if err := model.SaveNPZ(src2, model.Init(cfg, 2)); err != nil {
		t.Fatal(err)
	}
	_, err = Import(context.Background(), src2, "test-tiny", o)
	if !errors.Is(err, ErrChecksum) || !strings.Contains(err.Error(), "zoo rm test-tiny") {
		t.Fatalf("import over a recorded digest: %v", err)
	}
	if b, _ := os.ReadFile(res.Path); sha(b) != sha(data) {
		t.Fatal("refused import replaced the cached file")
	}
}

func TestLabelsArePulledAndOptionalOffline(t *testing.T) {
	data := tinyBytes(t)
	labels := []byte("a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n")
	s := newServer(t, map[string][]byte{testFile: data, "labels.txt": labels})
	e := testEntry()
	e.Labels = "labels.txt"
	dir := t.TempDir()
	o := s.opts(t, dir)
	o.Catalog = mustCatalog(t, e)

	// Model cached by hand, labels not: offline still succeeds.
	off := o
	off.Offline = true
	if err := os.MkdirAll(filepath.Join(dir, "test"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "test", "tiny.npz"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := Pull(context.Background(), "test-tiny", off)
	if err != nil || res.Labels != "" {
		t.Fatalf("offline pull without labels: %+v %v", res, err)
	}
	res, err = Pull(context.Background(), "test-tiny", o)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(res.Labels)
	if err != nil || string(got) != string(labels) {
		t.Fatalf("labels %q %v", got, err)
	}
	if _, ok, _ := (cache{dir}).record("labels.txt"); !ok {
		t.Fatal("label file digest not recorded")
	}
}

func TestBackoffDoublesWithJitterAndCap(t *testing.T) {
	p := &puller{o: Options{Backoff: 100 * time.Millisecond, MaxBackoff: time.Second}.withDefaults()}
	for k, d := range []time.Duration{100, 200, 400, 800, 1000, 1000} {
		d *= time.Millisecond
		for i := 0; i < 50; i++ {
			got := p.backoff(k+1, errors.New("x"))
			if got < d/2 || got > d {
				t.Fatalf("retry %d: wait %v outside [%v, %v]", k+1, got, d/2, d)
			}
		}
	}
	ra := retryAfter{errors.New("429"), 300 * time.Millisecond}
	if got := p.backoff(1, ra); got != 300*time.Millisecond {
		t.Fatalf("Retry-After gave %v", got)
	}
}

func TestParseContentRange(t *testing.T) {
	for _, tc := range []struct {
		in                string
		start, end, total int64
		ok                bool
	}{
		{"bytes 0-99/100", 0, 99, 100, true},
		{"bytes 10-99/*", 10, 99, -1, true},
		{"bytes */100", -1, -1, 100, true},
		{"bytes 10-100/100", 0, 0, 0, false},
		{"bytes 20-10/100", 0, 0, 0, false},
		{"items 0-1/2", 0, 0, 0, false},
		{"bytes -1-2/3", 0, 0, 0, false},
		{"", 0, 0, 0, false},
	} {
		s, e, n, ok := parseContentRange(tc.in)
		if ok != tc.ok || (ok && (s != tc.start || e != tc.end || n != tc.total)) {
			t.Errorf("%q: got %d %d %d %v", tc.in, s, e, n, ok)
		}
	}
}

// FuzzParseContentRange: the header comes from the server; accepted values
// must describe a sane range.
func FuzzParseContentRange(f *testing.F) {
	for _, s := range []string{"bytes 0-99/100", "bytes 10-99/*", "bytes */100", "bytes 5-4/10", "bytes 0-0/0", "bytes 9223372036854775807-9223372036854775807/*"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		start, end, size, ok := parseContentRange(s)
		if !ok {
			return
		}
		if start == -1 {
			if end != -1 || size < 0 {
				t.Fatalf("%q: unsatisfied-range form gave %d-%d/%d", s, start, end, size)
			}
			return
		}
		if start < 0 || end < start || (size >= 0 && end >= size) || size < -1 {
			t.Fatalf("%q: accepted %d-%d/%d", s, start, end, size)
		}
	})
}
