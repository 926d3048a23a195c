package zoo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/bitrun/bitrun/internal/atomicfile"
	"github.com/bitrun/bitrun/internal/ctxio"
	"github.com/bitrun/bitrun/model"
)

// Result describes a model file in the cache after Pull, Verify or Import.
type Result struct {
	Entry      Entry
	Path       string // the checkpoint in the cache
	Labels     string // its label file in the cache, "" when none
	SHA256     string // verified digest of Path
	Size       int64
	Cached     bool  // it was already in the cache (nothing downloaded)
	Downloaded int64 // bytes fetched over the network by this call
	Recorded   bool  // the digest was recorded in the lock file by this call
}

// puller carries one operation's options, cache and entry.
type puller struct {
	o        Options
	c        cache
	e        Entry
	lastTick time.Time
}

func newPuller(name string, opts Options) (*puller, Ref, error) {
	o := opts.withDefaults()
	ref, err := ParseName(name)
	if err != nil {
		return nil, Ref{}, err
	}
	e, err := o.Catalog.Lookup(ref.Name)
	if err != nil {
		return nil, Ref{}, err
	}
	dir, err := o.cacheDir()
	if err != nil {
		return nil, Ref{}, err
	}
	c := cache{dir: dir}
	for _, f := range []string{e.File, e.Labels} {
		if err := c.checkFolders(f); err != nil {
			return nil, Ref{}, err
		}
	}
	return &puller{o: o, c: c, e: e}, ref, nil
}

// report sends a progress report, throttled unless force.
func (p *puller) report(pr Progress, force bool) {
	if p.o.Progress == nil {
		return
	}
	now := time.Now()
	if !force && now.Sub(p.lastTick) < p.o.ProgressInterval {
		return
	}
	p.lastTick = now
	pr.Name = p.e.Name
	p.o.Progress(pr)
}

// want is the digest a file must have, and where that requirement comes from.
type want struct {
	digest string
	source string
	pinned bool // from the catalog or the caller, not from the lock file
}

// modelWant combines the caller's pin, the reference's digest, the catalog's
// and the lock file's record, in that order of precedence.
func (p *puller) modelWant(ref Ref) (want, error) {
	var w want
	if p.o.SHA256 != "" {
		d, err := ParseDigest(p.o.SHA256)
		if err != nil {
			return w, err
		}
		w = want{d, "--sha256", true}
	}
	if ref.Digest != "" {
		if w.digest != "" && w.digest != ref.Digest {
			return w, fmt.Errorf("zoo: %s: the reference pins sha256 %s but the option pins %s", p.e.Name, ref.Digest, w.digest)
		}
		w = want{ref.Digest, "reference " + ref.String(), true}
	}
	if w.digest == "" && p.e.SHA256 != "" {
		w = want{p.e.SHA256, "catalog", true}
	}
	if w.digest == "" {
		r, ok, err := p.c.record(p.e.File)
		if err != nil {
			return w, err
		}
		if ok {
			w = want{r.SHA256, LockFileName, false}
		}
	}
	return w, nil
}

func (p *puller) auxWant(file string) (want, error) {
	r, ok, err := p.c.record(file)
	if err != nil || !ok {
		return want{}, err
	}
	return want{r.SHA256, LockFileName, false}, nil
}

// Pull makes sure the named checkpoint is in the cache, downloading it when
// missing (resuming a .part file left by an earlier attempt), and returns its
// path. The file is verified against the pinned digest (opts.SHA256, a
// "NAME@sha256:HEX" reference, or the catalog) or, when none is pinned, the
// digest recorded in the cache's lock file at the first download; a newly
// downloaded file must also open as a BiT checkpoint of the catalog's
// architecture and class count before it is moved to its final path.
// Concurrent pulls of one file (goroutines or processes) download it once.
//
// Resource use: a cached file is hashed on every Pull (about a second per GB);
// a new one is also loaded into memory once (its float32 size, up to ~4.5 GB
// for BiT-M-R152x4). Downloads larger than the architecture allows are refused.
func Pull(ctx context.Context, name string, opts Options) (res Result, err error) {
	p, ref, err := newPuller(name, opts)
	if err != nil {
		return Result{}, err
	}
	defer func() {
		if err != nil {
			p.report(Progress{Phase: PhaseFailed, File: p.e.File, Total: -1, Err: err}, true)
		}
	}()
	w, err := p.modelWant(ref)
	if err != nil {
		return Result{}, err
	}
	res, err = p.ensure(ctx, p.e.File, p.e.URLFor(p.o.BaseURL), p.e.maxDownload(), w, true)
	if err != nil {
		return Result{}, err
	}
	if p.e.Labels != "" && !p.o.SkipLabels {
		if err := p.dropBadLabels(ctx); err != nil {
			return Result{}, err
		}
		lw, err := p.auxWant(p.e.Labels)
		if err != nil {
			return Result{}, err
		}
		lres, err := p.ensure(ctx, p.e.Labels, joinURL(p.o.BaseURL, p.e.Labels), 64<<20, lw, false)
		switch {
		case err == nil:
			res.Labels = lres.Path
			res.Downloaded += lres.Downloaded
		case errors.Is(err, ErrOffline):
			p.o.Logger.Warn("zoo: label file not cached; continuing without labels (offline)", "model", p.e.Name, "labels", p.e.Labels)
		default:
			return Result{}, fmt.Errorf("zoo: %s: fetching label file: %w", p.e.Name, err)
		}
	}
	p.report(Progress{Phase: PhaseDone, File: p.e.File, Done: res.Size, Total: res.Size}, true)
	return res, nil
}

// ensure makes file present and verified in the cache.
func (p *puller) ensure(ctx context.Context, file, url string, maxSize int64, w want, isModel bool) (Result, error) {
	final := p.c.path(file)
	replace := false
	if _, ok := fileSize(final); ok {
		res, err := p.verifyFinal(ctx, file, w, isModel)
		if err == nil {
			return res, nil
		}
		if !(errors.Is(err, ErrChecksum) || errors.Is(err, ErrCheckpoint)) || p.o.Offline {
			return Result{}, err
		}
		p.o.Logger.Warn("zoo: cached file is corrupt; downloading it again", "model", p.e.Name, "file", file, "err", err)
		replace = true
	}
	if p.o.Offline {
		return Result{}, fmt.Errorf("%w: %s (%s) is not in the cache %s", ErrOffline, p.e.Name, file, p.c.dir)
	}
	unlock, err := p.c.lock(ctx, file, func() {
		p.o.Logger.Info("zoo: another process is pulling this file; waiting", "model", p.e.Name, "file", file)
		p.report(Progress{Phase: PhaseWait, File: file, Total: -1}, true)
	})
	if err != nil {
		return Result{}, err
	}
	defer unlock()
	if replace {
		if err := os.Remove(final); err != nil && !errors.Is(err, os.ErrNotExist) {
			return Result{}, fmt.Errorf("zoo: removing corrupt %s: %w", final, err)
		}
	} else if _, ok := fileSize(final); ok {
		// Another puller finished while we waited for the lock.
		return p.verifyFinal(ctx, file, w, isModel)
	}
	if err := os.MkdirAll(filepath.Dir(final), 0o755); err != nil {
		return Result{}, fmt.Errorf("zoo: creating cache directory: %w", err)
	}
	n, err := p.download(ctx, job{name: p.e.Name, file: file, url: url, maxSize: maxSize})
	if err != nil {
		return Result{}, err
	}
	part := p.c.part(file)
	digest, size, err := p.hash(ctx, file, part)
	if err != nil {
		return Result{}, err
	}
	discard := func() {
		_ = os.Remove(part)
		_ = os.Remove(p.c.meta(file))
	}
	if w.digest != "" && digest != w.digest {
		discard()
		return Result{}, &ChecksumError{Name: p.e.Name, File: file, Want: w.digest, Got: digest, Source: w.source}
	}
	if isModel {
		if err := p.check(part); err != nil {
			discard()
			return Result{}, err
		}
	} else if err := checkLabels(part, p.e); err != nil {
		discard()
		return Result{}, err
	}
	if err := p.install(ctx, file, func() error { return atomicfile.Install(part, final) }, &record{Name: p.e.Name, SHA256: digest, Size: size, URL: url, Recorded: time.Now().UTC()}); err != nil {
		return Result{}, err
	}
	p.o.Logger.Info("zoo: pulled", "model", p.e.Name, "file", file, "sha256", digest, "bytes", size)
	return Result{Entry: p.e, Path: final, SHA256: digest, Size: size, Downloaded: n, Recorded: true}, nil
}

// install puts the verified file in place through commit (an
// internal/atomicfile rename into file's final path), drops any partial
// download of file and records r in the lock file.
func (p *puller) install(ctx context.Context, file string, commit func() error, r *record) error {
	if err := commit(); err != nil {
		return fmt.Errorf("zoo: %w", err)
	}
	_ = os.Remove(p.c.part(file))
	_ = os.Remove(p.c.meta(file))
	return p.c.setRecord(ctx, file, r)
}

func (p *puller) hash(ctx context.Context, file, path string) (string, int64, error) {
	total := int64(-1)
	if n, ok := fileSize(path); ok {
		total = n
	}
	p.report(Progress{Phase: PhaseVerify, File: file, Total: total}, true)
	digest, size, err := hashFile(ctx, path, func(done, total int64) {
		p.report(Progress{Phase: PhaseVerify, File: file, Done: done, Total: total}, false)
	})
	if err == nil {
		p.report(Progress{Phase: PhaseVerify, File: file, Done: size, Total: size}, true)
	}
	return digest, size, err
}

// verifyFinal checks the file at its final path against w. A file without a
// record in the lock file (copied in by hand, or the lock file was lost) must
// also open as the catalog's checkpoint, and is then recorded.
func (p *puller) verifyFinal(ctx context.Context, file string, w want, isModel bool) (Result, error) {
	final := p.c.path(file)
	digest, size, err := p.hash(ctx, file, final)
	if err != nil {
		return Result{}, err
	}
	if w.digest != "" && digest != w.digest {
		return Result{}, &ChecksumError{Name: p.e.Name, File: file, Want: w.digest, Got: digest, Source: w.source}
	}
	res := Result{Entry: p.e, Path: final, SHA256: digest, Size: size, Cached: true}
	if !isModel {
		// Label files are small: checked on every use, recorded or not.
		if err := checkLabels(final, p.e); err != nil {
			return Result{}, err
		}
	}
	r, ok, err := p.c.record(file)
	if err != nil {
		return Result{}, err
	}
	if !ok || r.SHA256 != digest {
		if isModel {
			if err := p.check(final); err != nil {
				return Result{}, err
			}
		}
		if err := p.c.setRecord(ctx, file, &record{Name: p.e.Name, SHA256: digest, Size: size, URL: p.e.URLFor(p.o.BaseURL), Recorded: time.Now().UTC()}); err != nil {
			return Result{}, err
		}
		res.Recorded = true
	}
	return res, nil
}

// ErrLabels is wrapped (with ErrCheckpoint) when a label file is not a
// plain-text list of one label per class.
var ErrLabels = errors.New("zoo: bad label file")

// checkLabels checks that the label file at path is plain UTF-8 text (no
// NUL or other control bytes, not an HTML page) with one non-empty line per
// class of e. Errors wrap ErrLabels and ErrCheckpoint.
func checkLabels(path string, e Entry) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("zoo: %w", err)
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %w: %s (%s): %s", ErrCheckpoint, ErrLabels, e.Name, filepath.Base(path), fmt.Sprintf(format, args...))
	}
	if !utf8.Valid(b) {
		return bad("not UTF-8 text")
	}
	if t := bytes.TrimSpace(b); len(t) > 0 && t[0] == '<' {
		return bad("looks like markup (an HTML error page?), not a label list")
	}
	for i, c := range b {
		if c < 0x20 && c != '\n' && c != '\r' && c != '\t' {
			return bad("control byte 0x%02x at offset %d", c, i)
		}
	}
	lines := strings.Split(strings.TrimRight(strings.ReplaceAll(string(b), "\r\n", "\n"), "\n"), "\n")
	if len(lines) != e.Classes {
		return bad("%d lines, want one label per class (%d)", len(lines), e.Classes)
	}
	for i, l := range lines {
		if strings.TrimSpace(l) == "" {
			return bad("line %d is empty", i+1)
		}
	}
	return nil
}

// dropBadLabels removes a cached label file that fails checkLabels, and its
// lock-file record, so that Pull downloads it again instead of pinning it.
func (p *puller) dropBadLabels(ctx context.Context) error {
	path := p.c.path(p.e.Labels)
	if _, ok := fileSize(path); !ok {
		return nil
	}
	err := checkLabels(path, p.e)
	if err == nil || !errors.Is(err, ErrLabels) || p.o.Offline {
		return nil // offline: ensure reports it
	}
	p.o.Logger.Warn("zoo: cached label file is bad; downloading it again", "model", p.e.Name, "file", p.e.Labels, "err", err)
	unlock, lerr := p.c.lock(ctx, p.e.Labels, nil)
	if lerr != nil {
		return lerr
	}
	defer unlock()
	if rerr := os.Remove(path); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
		return fmt.Errorf("zoo: removing bad %s: %w", path, rerr)
	}
	return p.c.setRecord(ctx, p.e.Labels, nil)
}

// check opens path as a BiT checkpoint and compares its structure with the
// catalog's architecture and class count.
func (p *puller) check(path string) error {
	p.report(Progress{Phase: PhaseCheck, File: p.e.File, Total: -1}, true)
	return checkCheckpoint(path, p.e)
}

func checkCheckpoint(path string, e Entry) error {
	params, err := model.LoadNPZ(path)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrCheckpoint, e.Name, err)
	}
	got, err := model.Infer(params)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrCheckpoint, e.Name, err)
	}
	wantCfg, err := model.Arch(e.Arch, e.Classes)
	if err != nil {
		return fmt.Errorf("zoo: %s: %w", e.Name, err)
	}
	if got.Units != wantCfg.Units || got.RootWidth != wantCfg.RootWidth || got.Widths != wantCfg.Widths || got.Classes != wantCfg.Classes {
		return fmt.Errorf("%w: %s: the file holds %s with %d classes (units %v, widths %v), the catalog says %s with %d classes",
			ErrCheckpoint, e.Name, got.Name, got.Classes, got.Units, got.Widths, e.Arch, e.Classes)
	}
	if err := model.Check(got, params); err != nil { // every key present, nothing extra, shapes right
		return fmt.Errorf("%w: %s: %w", ErrCheckpoint, e.Name, err)
	}
	return nil
}

// Verify re-hashes a cached checkpoint (and its label file), compares it with
// the pinned or recorded digest and opens it as the catalog's checkpoint. A
// file without a record is recorded once it passes.
func Verify(ctx context.Context, name string, opts Options) (Result, error) {
	p, ref, err := newPuller(name, opts)
	if err != nil {
		return Result{}, err
	}
	final := p.c.path(p.e.File)
	if _, ok := fileSize(final); !ok {
		return Result{}, fmt.Errorf("%w: %s (%s)", ErrNotCached, p.e.Name, final)
	}
	w, err := p.modelWant(ref)
	if err != nil {
		return Result{}, err
	}
	res, err := p.verifyFinal(ctx, p.e.File, w, true)
	if err != nil {
		return Result{}, err
	}
	if !res.Recorded { // verifyFinal skipped the structural check for a recorded file
		if err := p.check(final); err != nil {
			return Result{}, err
		}
	}
	if p.e.Labels != "" {
		if _, ok := fileSize(p.c.path(p.e.Labels)); ok {
			lw, err := p.auxWant(p.e.Labels)
			if err != nil {
				return Result{}, err
			}
			lres, err := p.verifyFinal(ctx, p.e.Labels, lw, false)
			if err != nil {
				return Result{}, err
			}
			res.Labels = lres.Path
		}
	}
	return res, nil
}

// Import registers a checkpoint obtained by other means (copied by hand into
// an air-gapped site) as the named catalog entry: it is copied into the cache,
// verified against the pinned digest if any (or the lock file's record), opened
// as the catalog's architecture, and its digest recorded.
func Import(ctx context.Context, src, name string, opts Options) (Result, error) {
	p, ref, err := newPuller(name, opts)
	if err != nil {
		return Result{}, err
	}
	w, err := p.modelWant(ref)
	if err != nil {
		return Result{}, err
	}
	if _, err := os.Stat(src); errors.Is(err, fs.ErrNotExist) {
		return Result{}, fmt.Errorf("zoo: import %s: no such file: %w", src, err)
	}
	if _, ok := fileSize(src); !ok {
		return Result{}, fmt.Errorf("zoo: import %s: not a regular file", src)
	}
	unlock, err := p.c.lock(ctx, p.e.File, nil)
	if err != nil {
		return Result{}, err
	}
	defer unlock()
	final := p.c.path(p.e.File)
	if err := os.MkdirAll(filepath.Dir(final), 0o755); err != nil {
		return Result{}, fmt.Errorf("zoo: creating cache directory: %w", err)
	}
	f, err := copyToPending(ctx, src, final)
	if err != nil {
		return Result{}, err
	}
	defer f.Cleanup()
	tmp := f.Name()
	digest, size, err := p.hash(ctx, p.e.File, tmp)
	if err != nil {
		return Result{}, err
	}
	if w.digest != "" && digest != w.digest {
		msg := &ChecksumError{Name: p.e.Name, File: src, Want: w.digest, Got: digest, Source: w.source}
		if !w.pinned {
			return Result{}, fmt.Errorf("%w (another file was recorded for this model; `bitrun zoo rm %s` first to replace it)", msg, p.e.Name)
		}
		return Result{}, msg
	}
	if err := p.check(tmp); err != nil { // the copy, so what is checked is what lands in the cache
		return Result{}, err
	}
	if err := p.install(ctx, p.e.File, f.Commit, &record{Name: p.e.Name, SHA256: digest, Size: size, URL: "file://" + src, Recorded: time.Now().UTC()}); err != nil {
		return Result{}, err
	}
	return Result{Entry: p.e, Path: final, SHA256: digest, Size: size, Recorded: true}, nil
}

// copyToPending copies src into a pending file for final; the caller
// checks it, then commits or cleans it up.
func copyToPending(ctx context.Context, src, final string) (*atomicfile.File, error) {
	in, err := os.Open(src)
	if err != nil {
		return nil, fmt.Errorf("zoo: %w", err)
	}
	defer in.Close()
	f, err := atomicfile.Create(final)
	if err != nil {
		return nil, fmt.Errorf("zoo: %w", err)
	}
	if _, err := io.Copy(f, ctxio.Reader(ctx, in)); err != nil {
		f.Cleanup()
		return nil, fmt.Errorf("zoo: copying %s into the cache: %w", src, err)
	}
	return f, nil
}

// Remove deletes a model's file, any partial download and its lock-file
// record. Shared label files are kept. Removing an uncached model gives
// ErrNotCached.
func Remove(ctx context.Context, name string, opts Options) error {
	p, _, err := newPuller(name, opts)
	if err != nil {
		return err
	}
	unlock, err := p.c.lock(ctx, p.e.File, nil)
	if err != nil {
		return err
	}
	defer unlock()
	found := false
	for _, path := range []string{p.c.path(p.e.File), p.c.part(p.e.File), p.c.meta(p.e.File)} {
		err := os.Remove(path)
		if err == nil {
			found = true
		} else if !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("zoo: %w", err)
		}
	}
	_, recorded, err := p.c.record(p.e.File)
	if err != nil {
		return err
	}
	if recorded {
		found = true
		if err := p.c.setRecord(ctx, p.e.File, nil); err != nil {
			return err
		}
	}
	if !found {
		return fmt.Errorf("%w: %s", ErrNotCached, p.e.Name)
	}
	return nil
}

// Item is a catalog entry with its state in the cache.
type Item struct {
	Entry
	Path     string `json:"path"`               // where the file lives (or would)
	Cached   bool   `json:"cached"`             // the file is at Path
	Bytes    int64  `json:"bytes,omitempty"`    // its size on disk
	Partial  int64  `json:"partial,omitempty"`  // bytes of an unfinished download
	Recorded string `json:"recorded,omitempty"` // digest in the lock file
	Estimate int64  `json:"size_estimate"`      // EstimatedSize of the entry
}

// List reports every catalog entry with its cache state (file system metadata
// only: nothing is hashed).
func List(opts Options) ([]Item, error) {
	o := opts.withDefaults()
	dir, err := o.cacheDir()
	if err != nil {
		return nil, err
	}
	c := cache{dir: dir}
	rs, err := c.records()
	if err != nil {
		return nil, err
	}
	entries := o.Catalog.Entries()
	items := make([]Item, len(entries))
	for i, e := range entries {
		it := Item{Entry: e, Path: c.path(e.File), Estimate: e.EstimatedSize()}
		if n, ok := fileSize(it.Path); ok {
			it.Cached, it.Bytes = true, n
		}
		if n, ok := fileSize(c.part(e.File)); ok {
			it.Partial = n
		}
		if r, ok := rs[e.File]; ok {
			it.Recorded = r.SHA256
		}
		items[i] = it
	}
	return items, nil
}

// Locate reports one entry's cache state without touching the network.
func Locate(name string, opts Options) (Item, error) {
	p, _, err := newPuller(name, opts)
	if err != nil {
		return Item{}, err
	}
	it := Item{Entry: p.e, Path: p.c.path(p.e.File), Estimate: p.e.EstimatedSize()}
	if n, ok := fileSize(it.Path); ok {
		it.Cached, it.Bytes = true, n
	}
	if n, ok := fileSize(p.c.part(p.e.File)); ok {
		it.Partial = n
	}
	r, ok, err := p.c.record(p.e.File)
	if err != nil {
		return Item{}, err
	}
	if ok {
		it.Recorded = r.SHA256
	}
	return it, nil
}

// CacheDir returns the directory opts resolve to.
func CacheDir(opts Options) (string, error) { return opts.cacheDir() }
