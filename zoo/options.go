package zoo

import (
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/bitrun/bitrun/internal/setting"
)

// Options configure Pull, Verify, Import, Remove and List. The zero value is
// usable: every zero field takes the default documented on it, and a
// negative duration or count switches its limit off, as documented per
// field.
type Options struct {
	// Catalog to resolve names in; nil means Default().
	Catalog *Catalog
	// CacheDir holds the checkpoints; "" means DefaultCacheDir().
	CacheDir string
	// BaseURL replaces DefaultBaseURL (a mirror with the same layout).
	BaseURL string
	// Offline forbids every network access: uncached models fail with ErrOffline.
	Offline bool
	// SHA256 pins the model file's digest (hex, optionally "sha256:"-prefixed),
	// overriding the catalog and the lock file.
	SHA256 string
	// Client makes the requests; nil means a client whose transport honours
	// HTTP_PROXY/HTTPS_PROXY/NO_PROXY (http.ProxyFromEnvironment).
	Client *http.Client
	// Logger receives progress-independent events (retries, resumes); nil discards.
	Logger *slog.Logger
	// Progress, when set, is called from the pulling goroutine at most every
	// ProgressInterval and at each phase change.
	Progress func(Progress)
	// ProgressInterval is the shortest time between two Progress calls of
	// one phase; 0: 100ms; negative: no throttling (every update).
	ProgressInterval time.Duration
	// StallTimeout: an attempt that receives no bytes (headers included) for
	// this long is abandoned and retried. 0: 30s; negative: no stall limit.
	StallTimeout time.Duration
	// MaxAttempts per file; an attempt that made at least 1 MiB of progress does
	// not count. 0: 5; negative: no limit.
	MaxAttempts int
	// Backoff is the wait before the first retry, doubled each retry up to
	// MaxBackoff, with jitter (each wait is drawn from [d/2, d]). Backoff 0:
	// 1s, negative: retry at once. MaxBackoff 0: 30s, negative: no doubling
	// (every wait is Backoff).
	Backoff    time.Duration
	MaxBackoff time.Duration
	// SkipLabels does not fetch the entry's label file.
	SkipLabels bool
}

// DefaultOptions returns the defaults spelled out (CacheDir resolved).
func DefaultOptions() Options {
	o := Options{}.withDefaults()
	if dir, err := DefaultCacheDir(); err == nil {
		o.CacheDir = dir
	}
	return o
}

func (o Options) withDefaults() Options {
	if o.Catalog == nil {
		o.Catalog = Default()
	}
	if o.BaseURL == "" {
		o.BaseURL = DefaultBaseURL
	}
	if o.Client == nil {
		o.Client = defaultClient
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	o.ProgressInterval = setting.Resolve(o.ProgressInterval, 100*time.Millisecond, 0)
	o.StallTimeout = setting.Resolve(o.StallTimeout, 30*time.Second, math.MaxInt64)
	o.MaxAttempts = setting.Resolve(o.MaxAttempts, 5, math.MaxInt)
	o.Backoff = setting.Resolve(o.Backoff, time.Second, 0)
	o.MaxBackoff = setting.Resolve(o.MaxBackoff, 30*time.Second, o.Backoff)
	if o.MaxBackoff < o.Backoff {
		o.MaxBackoff = o.Backoff
	}
	return o
}

// cacheDir resolves the cache directory.
func (o Options) cacheDir() (string, error) {
	if o.CacheDir != "" {
		return filepath.Abs(o.CacheDir)
	}
	return DefaultCacheDir()
}

// DefaultCacheDir is os.UserCacheDir()/bitrun.
func DefaultCacheDir() (string, error) {
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("zoo: no cache directory (set one explicitly): %w", err)
	}
	return filepath.Join(d, "bitrun"), nil
}

var defaultClient = &http.Client{Transport: newTransport()}

func newTransport() http.RoundTripper {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = http.ProxyFromEnvironment
	t.ResponseHeaderTimeout = 0 // the stall watchdog covers waiting for headers
	return t
}

// Phase of a pull reported through Progress.
type Phase string

const (
	PhaseWait     Phase = "wait"     // waiting for another process pulling the same file
	PhaseDownload Phase = "download" // bytes arriving
	PhaseRetry    Phase = "retry"    // waiting before the next attempt
	PhaseVerify   Phase = "verify"   // computing the SHA-256
	PhaseCheck    Phase = "check"    // opening the file as a BiT checkpoint
	PhaseDone     Phase = "done"
	PhaseFailed   Phase = "failed" // Pull is returning an error (Err); the last report of a failed Pull
)

// Progress is one progress report.
type Progress struct {
	Name    string // catalog name
	File    string // file being fetched (the model file or its label file)
	Phase   Phase
	Done    int64 // bytes on disk (download) or hashed (verify)
	Total   int64 // expected bytes, -1 when unknown
	Resumed int64 // bytes that were already on disk when this attempt started
	Attempt int   // 1-based attempt number (download and retry phases)
	Err     error // PhaseRetry: why the last attempt failed; PhaseFailed: the error Pull returns
	Wait    time.Duration
}
