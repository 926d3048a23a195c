package zoo

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
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

// tinyCheckpoint is a real checkpoint in the official format: a freshly
// initialised "tiny" BiT with 10 classes written by model.SaveNPZ.
var tinyCheckpoint = sync.OnceValues(func() ([]byte, error) {
	cfg, err := model.Arch("tiny", 10)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "zoo-tiny-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	p := filepath.Join(dir, "tiny.npz")
	if err := model.SaveNPZ(p, model.Init(cfg, 1)); err != nil {
		return nil, err
	}
	return os.ReadFile(p)
})

func tinyBytes(t testing.TB) []byte {
	t.Helper()
	b, err := tinyCheckpoint()
	if err != nil {
		t.Fatalf("making the tiny checkpoint: %v", err)
	}
	return append([]byte(nil), b...)
}

func sha(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

const testFile = "test/tiny.npz"

func testEntry() Entry {
	return Entry{Name: "test-tiny", File: testFile, Arch: "tiny", Classes: 10, Data: "none", Resolution: 32}
}

// server serves files with HTTP Range support and counts what it sends.
// hook, when set, may take over request number n (1-based) by returning true.
type server struct {
	t           testing.TB
	mu          sync.Mutex
	files       map[string][]byte
	ignoreRange bool
	hook        func(w http.ResponseWriter, r *http.Request, n int64) bool
	delay       time.Duration // before the headers of every request
	chunk       int           // write the body in chunks of this size...
	chunkDelay  atomic.Int64  // ...sleeping this many nanoseconds between them

	requests atomic.Int64
	served   atomic.Int64
	ranges   []string
	srv      *httptest.Server
}

func newServer(t testing.TB, files map[string][]byte) *server {
	s := &server{t: t, files: files}
	s.srv = httptest.NewServer(s)
	t.Cleanup(s.srv.Close)
	return s
}

// set changes the server's behaviour under its lock.
func (s *server) set(f func(s *server)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

func (s *server) setHook(h func(w http.ResponseWriter, r *http.Request, n int64) bool) {
	s.set(func(s *server) { s.hook = h })
}

func (s *server) base() string { return s.srv.URL + "/" }

func (s *server) rangeHeaders() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.ranges...)
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := s.requests.Add(1)
	s.mu.Lock()
	s.ranges = append(s.ranges, r.Header.Get("Range"))
	data, ok := s.files[strings.TrimPrefix(r.URL.Path, "/")]
	hook, delay := s.hook, s.delay
	s.mu.Unlock()
	if delay > 0 {
		time.Sleep(delay)
	}
	if hook != nil && hook(w, r, n) {
		return
	}
	if !ok {
		http.NotFound(w, r)
		return
	}
	s.serve(w, r, data, -1)
}

// serve writes data honouring Range; when cut >= 0 the connection is dropped
// after byte cut (absolute offset) of the body.
func (s *server) serve(w http.ResponseWriter, r *http.Request, data []byte, cut int) {
	s.mu.Lock()
	ignoreRange, chunk := s.ignoreRange, s.chunk
	s.mu.Unlock()
	start := 0
	h := w.Header()
	h.Set("ETag", `"`+sha(data)[:16]+`"`)
	h.Set("Accept-Ranges", "bytes")
	status := http.StatusOK
	if rg := r.Header.Get("Range"); rg != "" && !ignoreRange {
		v, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(rg, "bytes="), "-"))
		if err != nil || v < 0 {
			http.Error(w, "bad range", http.StatusBadRequest)
			return
		}
		if ir := r.Header.Get("If-Range"); ir != "" && ir != h.Get("ETag") {
			v = 0 // changed: send it all
		}
		if v >= len(data) {
			h.Set("Content-Range", fmt.Sprintf("bytes */%d", len(data)))
			w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
			return
		}
		if v > 0 {
			start, status = v, http.StatusPartialContent
			h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", v, len(data)-1, len(data)))
		}
	}
	h.Set("Content-Length", strconv.Itoa(len(data)-start))
	w.WriteHeader(status)
	end := len(data)
	if cut >= 0 && cut < end {
		end = max(cut, start)
	}
	if chunk <= 0 {
		chunk = len(data)
	}
	for off := start; off < end; off += chunk {
		m, _ := w.Write(data[off:min(off+chunk, end)])
		s.served.Add(int64(m))
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		if d := time.Duration(s.chunkDelay.Load()); d > 0 {
			select {
			case <-r.Context().Done():
				return
			case <-time.After(d):
			}
		}
	}
	if end < len(data) {
		panic(http.ErrAbortHandler) // drop the connection mid-body
	}
}

// opts are fast test options against s.
func (s *server) opts(t testing.TB, dir string) Options {
	cat, err := NewCatalog(testEntry())
	if err != nil {
		t.Fatal(err)
	}
	return Options{
		Catalog:      cat,
		CacheDir:     dir,
		BaseURL:      s.base(),
		Backoff:      time.Millisecond,
		MaxBackoff:   5 * time.Millisecond,
		MaxAttempts:  3,
		StallTimeout: 5 * time.Second,
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
