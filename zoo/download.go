package zoo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// partMeta is kept next to a .part file so that a resumed download can ask the
// server (If-Range) for the same version of the file.
type partMeta struct {
	URL          string `json:"url"`
	ETag         string `json:"etag,omitempty"`
	LastModified string `json:"last_modified,omitempty"`
	Total        int64  `json:"total"` // -1 when unknown
}

// job is one file to bring into the cache.
type job struct {
	name    string // catalog name, for messages
	file    string // cache-relative path
	url     string
	maxSize int64 // refuse anything larger
}

// permanent marks an error that retrying cannot fix.
type permanent struct{ err error }

func (p permanent) Error() string { return p.err.Error() }
func (p permanent) Unwrap() error { return p.err }

// errRestart: the .part file cannot be resumed; it was truncated and the next
// attempt starts from zero.
var errRestart = errors.New("zoo: restarting download from zero")

// progressMinReset is the progress that makes a failed attempt not count
// against MaxAttempts.
const progressMinReset = 1 << 20

// download brings the .part file of j to completion, resuming what is on disk,
// and returns the number of bytes fetched over the network.
func (p *puller) download(ctx context.Context, j job) (fetched int64, err error) {
	defer func() {
		if n, ok := fileSize(p.c.part(j.file)); err != nil && ok && n == 0 {
			_ = os.Remove(p.c.part(j.file)) // nothing to resume
			_ = os.Remove(p.c.meta(j.file))
		}
	}()
	attempt, counted := 0, 0
	for {
		attempt++
		counted++
		n, err := p.attempt(ctx, j, attempt)
		fetched += n
		if err == nil {
			return fetched, nil
		}
		if ctx.Err() != nil {
			return fetched, interrupted(ctx, j)
		}
		var perm permanent
		if errors.As(err, &perm) {
			return fetched, perm.err
		}
		if n >= progressMinReset {
			counted = 1 // it moved forward: keep going
		}
		if counted >= p.o.MaxAttempts {
			var he *HTTPError
			if errors.As(err, &he) {
				he.Attempts = attempt
				return fetched, he
			}
			return fetched, fmt.Errorf("zoo: downloading %s from %s failed after %d attempts: %w", j.name, j.url, attempt, err)
		}
		wait := p.backoff(counted, err)
		// Info, not Warn: the Progress callback reports every retry too (a
		// CLI prints it once, from there).
		p.o.Logger.Info("zoo: download attempt failed, retrying", "model", j.name, "url", j.url,
			"attempt", attempt, "wait", wait, "err", err)
		p.report(Progress{Phase: PhaseRetry, File: j.file, Attempt: attempt, Err: err, Wait: wait, Total: -1}, true)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fetched, interrupted(ctx, j)
		case <-t.C:
		}
	}
}

// interrupted wraps ctx.Err() (so errors.Is(err, context.Canceled) holds) and
// names the cause when it says more.
func interrupted(ctx context.Context, j job) error {
	err := ctx.Err()
	if c := context.Cause(ctx); c != nil && c != err {
		return fmt.Errorf("zoo: pulling %s interrupted (%v; the .part file is kept for resuming): %w", j.name, c, err)
	}
	return fmt.Errorf("zoo: pulling %s interrupted (the .part file is kept for resuming): %w", j.name, err)
}

// backoff is the wait before retry number k (1-based): Backoff*2^(k-1) capped
// at MaxBackoff, drawn uniformly from [d/2, d]; a Retry-After from the server
// is honoured up to MaxBackoff.
func (p *puller) backoff(k int, err error) time.Duration {
	d := p.o.Backoff
	for i := 1; i < k && d < p.o.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, p.o.MaxBackoff)
	var ra retryAfter
	if errors.As(err, &ra) && ra.d > 0 {
		return min(ra.d, p.o.MaxBackoff)
	}
	return d/2 + rand.N(d/2+1)
}

type retryAfter struct {
	err error
	d   time.Duration
}

func (r retryAfter) Error() string { return r.err.Error() }
func (r retryAfter) Unwrap() error { return r.err }

// attempt makes one request and appends what arrives to the .part file. It
// returns the bytes received; nil error means the .part file is complete.
func (p *puller) attempt(ctx context.Context, j job, attempt int) (received int64, err error) {
	partPath, metaPath := p.c.part(j.file), p.c.meta(j.file)
	for _, path := range []string{partPath, metaPath} {
		if err := checkRegular(path); err != nil {
			return 0, permanent{err}
		}
	}
	// O_NOFOLLOW: a link planted between the check and the open fails too.
	f, err := os.OpenFile(partPath, os.O_WRONLY|os.O_CREATE|oNoFollow, 0o644)
	if err != nil {
		return 0, permanent{fmt.Errorf("zoo: opening %s: %w", partPath, err)}
	}
	defer func() {
		if cerr := f.Close(); cerr != nil && err == nil {
			err = permanent{fmt.Errorf("zoo: closing %s: %w", partPath, cerr)}
		}
	}()
	st, err := f.Stat()
	if err != nil {
		return 0, permanent{fmt.Errorf("zoo: %w", err)}
	}
	off := st.Size()
	meta := readMeta(metaPath)
	sameURL := meta != nil && meta.URL == j.url
	if off > 0 && sameURL && meta.Total >= 0 && off == meta.Total {
		return 0, nil // finished earlier, not yet verified
	}
	if off > 0 && sameURL && meta.Total >= 0 && off > meta.Total {
		off = 0 // longer than the file: start again
	}
	if off > 0 && off > j.maxSize {
		off = 0
	}
	if off == 0 {
		if err := f.Truncate(0); err != nil {
			return 0, permanent{fmt.Errorf("zoo: %w", err)}
		}
	}

	actx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stall := time.AfterFunc(p.o.StallTimeout, func() { cancel(ErrStalled) })
	defer stall.Stop()
	stalled := func(err error) error {
		if errors.Is(context.Cause(actx), ErrStalled) && ctx.Err() == nil {
			return fmt.Errorf("%w: no data from %s for %v", ErrStalled, j.url, p.o.StallTimeout)
		}
		return err
	}

	req, err := http.NewRequestWithContext(actx, http.MethodGet, j.url, nil)
	if err != nil {
		return 0, permanent{fmt.Errorf("zoo: bad URL %q: %w", j.url, err)}
	}
	// identity: a transparently decompressed body would not match byte ranges.
	req.Header.Set("Accept-Encoding", "identity")
	req.Header.Set("User-Agent", "bitrun-zoo")
	if off > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", off))
		if sameURL {
			if meta.ETag != "" && !strings.HasPrefix(meta.ETag, "W/") {
				req.Header.Set("If-Range", meta.ETag)
			} else if meta.LastModified != "" {
				req.Header.Set("If-Range", meta.LastModified)
			}
		}
	}
	resp, err := p.o.Client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // it would repeat the method and URL
		}
		var dns *net.DNSError
		if errors.As(err, &dns) && dns.IsNotFound {
			return 0, permanent{fmt.Errorf("zoo: GET %s: %w", j.url, err)} // a wrong host name does not heal
		}
		return 0, stalled(fmt.Errorf("zoo: GET %s: %w", j.url, err))
	}
	defer resp.Body.Close()

	total := int64(-1)
	switch resp.StatusCode {
	case http.StatusPartialContent:
		start, _, size, ok := parseContentRange(resp.Header.Get("Content-Range"))
		if !ok || start != off {
			_ = f.Truncate(0)
			return 0, fmt.Errorf("%w: server sent range %q for a request from byte %d", errRestart, resp.Header.Get("Content-Range"), off)
		}
		total = size
		if off > 0 {
			p.o.Logger.Info("zoo: resuming download", "model", j.name, "file", j.file, "from", off)
		}
	case http.StatusOK:
		if off > 0 {
			p.o.Logger.Info("zoo: server ignored the range request; restarting from zero", "model", j.name, "file", j.file)
			if err := f.Truncate(0); err != nil {
				return 0, permanent{fmt.Errorf("zoo: %w", err)}
			}
			off = 0
		}
		total = resp.ContentLength
	case http.StatusRequestedRangeNotSatisfiable:
		_, _, size, ok := parseContentRange(resp.Header.Get("Content-Range"))
		if ok && size == off && off > 0 {
			return 0, nil // the .part file already holds the whole file
		}
		_ = f.Truncate(0)
		return 0, fmt.Errorf("%w: server refused range from byte %d", errRestart, off)
	default:
		he := &HTTPError{URL: j.url, StatusCode: resp.StatusCode, Status: resp.Status, Attempts: attempt}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		if !he.retriable() {
			return 0, permanent{he}
		}
		if s := resp.Header.Get("Retry-After"); s != "" {
			if secs, err := strconv.Atoi(s); err == nil && secs > 0 {
				return 0, retryAfter{he, time.Duration(secs) * time.Second}
			}
		}
		return 0, he
	}
	if total > j.maxSize {
		return 0, permanent{fmt.Errorf("zoo: %s: server announces %d bytes, more than the %d this checkpoint can hold", j.url, total, j.maxSize)}
	}
	if off == 0 || !sameURL {
		m := partMeta{URL: j.url, ETag: resp.Header.Get("ETag"), LastModified: resp.Header.Get("Last-Modified"), Total: total}
		if b, err := json.Marshal(m); err == nil {
			_ = writeFileAtomic(metaPath, b) // best effort: only makes resuming safer
		}
	}
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return 0, permanent{fmt.Errorf("zoo: %w", err)}
	}

	buf := make([]byte, 256<<10)
	done := off
	p.report(Progress{Phase: PhaseDownload, File: j.file, Done: done, Total: total, Resumed: off, Attempt: attempt}, true)
	for {
		n, rerr := resp.Body.Read(buf)
		if n > 0 {
			stall.Reset(p.o.StallTimeout)
			if done+int64(n) > j.maxSize {
				return received, permanent{fmt.Errorf("zoo: %s: more than %d bytes, too large for this checkpoint", j.url, j.maxSize)}
			}
			if _, werr := f.Write(buf[:n]); werr != nil {
				return received, permanent{fmt.Errorf("zoo: writing %s: %w", partPath, werr)}
			}
			received += int64(n)
			done += int64(n)
			p.report(Progress{Phase: PhaseDownload, File: j.file, Done: done, Total: total, Resumed: off, Attempt: attempt}, false)
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return received, stalled(fmt.Errorf("zoo: GET %s: reading body at byte %d: %w", j.url, done, rerr))
		}
	}
	if total >= 0 && done != total {
		return received, fmt.Errorf("zoo: GET %s: body ended at byte %d of %d: %w", j.url, done, total, io.ErrUnexpectedEOF)
	}
	if err := f.Sync(); err != nil {
		return received, permanent{fmt.Errorf("zoo: syncing %s: %w", partPath, err)}
	}
	p.report(Progress{Phase: PhaseDownload, File: j.file, Done: done, Total: done, Resumed: off, Attempt: attempt}, true)
	return received, nil
}

func readMeta(path string) *partMeta {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var m partMeta
	if json.Unmarshal(b, &m) != nil {
		return nil
	}
	return &m
}

// parseContentRange parses "bytes START-END/SIZE" or "bytes */SIZE" (start and
// end are -1 then); SIZE "*" gives -1.
func parseContentRange(s string) (start, end, size int64, ok bool) {
	rest, found := strings.CutPrefix(strings.TrimSpace(s), "bytes ")
	if !found {
		return 0, 0, 0, false
	}
	rng, sz, found := strings.Cut(rest, "/")
	if !found {
		return 0, 0, 0, false
	}
	size = -1
	if sz != "*" {
		v, err := strconv.ParseInt(sz, 10, 64)
		if err != nil || v < 0 {
			return 0, 0, 0, false
		}
		size = v
	}
	if rng == "*" {
		return -1, -1, size, size >= 0
	}
	a, b, found := strings.Cut(rng, "-")
	if !found {
		return 0, 0, 0, false
	}
	start, err1 := strconv.ParseInt(a, 10, 64)
	end, err2 := strconv.ParseInt(b, 10, 64)
	if err1 != nil || err2 != nil || start < 0 || end < start || (size >= 0 && end >= size) {
		return 0, 0, 0, false
	}
	return start, end, size, true
}
