package zoo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/gofrs/flock"

	"github.com/bitrun/bitrun/internal/atomicfile"
	"github.com/bitrun/bitrun/internal/digest"
)

// LockFileName is the file in the cache directory that records the SHA-256 of
// every file the first time it was downloaded (or imported), so that later
// reads and downloads are verified against it.
const LockFileName = "bitrun.lock.json"

// lockDirName holds the cross-process lock files (never removed: deleting a
// lock file another process waits on would break mutual exclusion).
const lockDirName = ".locks"

// cache is the on-disk layout below one directory.
type cache struct{ dir string }

func (c cache) path(file string) string { return filepath.Join(c.dir, filepath.FromSlash(file)) }
func (c cache) part(file string) string { return c.path(file) + ".part" }
func (c cache) meta(file string) string { return c.path(file) + ".part.json" }
func (c cache) lockPath(file string) string {
	return filepath.Join(c.dir, lockDirName, strings.ReplaceAll(file, "/", "__")+".lock")
}

// lock takes the cross-process lock of file, calling onWait once if another
// holder makes it wait. The returned function releases it and removes the
// lock file, so no stale .locks/*.lock files stay behind: a waiter that
// then holds the removed file sees that the path no longer names it and
// locks afresh (the holder of the file at the path is the only holder).
func (c cache) lock(ctx context.Context, file string, onWait func()) (func(), error) {
	p := c.lockPath(file)
	if err := c.checkFolders(lockDirName + "/lock"); err != nil {
		return nil, err
	}
	waited := false
	for {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return nil, fmt.Errorf("zoo: creating lock directory: %w", err)
		}
		fl := flock.New(p)
		ok, err := fl.TryLock()
		if err != nil {
			return nil, fmt.Errorf("zoo: locking %s: %w", p, err)
		}
		if !ok {
			if onWait != nil && !waited {
				onWait()
			}
			waited = true
			ok, err = fl.TryLockContext(ctx, 50*time.Millisecond)
			if err != nil || !ok {
				_ = fl.Close()
				if ctx.Err() != nil {
					return nil, fmt.Errorf("zoo: waiting for the lock on %s: %w", file, ctx.Err())
				}
				return nil, fmt.Errorf("zoo: locking %s: %w", p, err)
			}
		}
		held, herr := fl.Stat()
		cur, cerr := os.Stat(p)
		if herr != nil || cerr != nil || !os.SameFile(held, cur) {
			// The previous holder removed the file we waited on.
			_ = fl.Close()
			if err := ctx.Err(); err != nil {
				return nil, fmt.Errorf("zoo: waiting for the lock on %s: %w", file, err)
			}
			continue
		}
		return func() {
			_ = os.Remove(p)
			_ = fl.Close()
		}, nil
	}
}

// record is what the lock file remembers about one cached file.
type record struct {
	Name     string    `json:"name"`
	SHA256   string    `json:"sha256"`
	Size     int64     `json:"size"`
	URL      string    `json:"url,omitempty"`
	Recorded time.Time `json:"recorded"`
}

type lockFile struct {
	Version int               `json:"version"`
	Files   map[string]record `json:"files"`
}

// records reads the lock file; a missing file is empty, a malformed one an
// error (silently dropping pins would defeat them).
func (c cache) records() (map[string]record, error) {
	b, err := os.ReadFile(filepath.Join(c.dir, LockFileName))
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]record{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("zoo: reading lock file: %w", err)
	}
	var lf lockFile
	if err := json.Unmarshal(b, &lf); err != nil {
		return nil, fmt.Errorf("zoo: lock file %s is malformed (fix or delete it): %w", filepath.Join(c.dir, LockFileName), err)
	}
	if lf.Files == nil {
		lf.Files = map[string]record{}
	}
	return lf.Files, nil
}

func (c cache) record(file string) (record, bool, error) {
	rs, err := c.records()
	if err != nil {
		return record{}, false, err
	}
	r, ok := rs[file]
	return r, ok, nil
}

// setRecord writes (r != nil) or deletes (r == nil) the record of file,
// read-modify-writing the lock file under its own cross-process lock.
func (c cache) setRecord(ctx context.Context, file string, r *record) error {
	unlock, err := c.lock(ctx, LockFileName, nil)
	if err != nil {
		return err
	}
	defer unlock()
	rs, err := c.records()
	if err != nil {
		return err
	}
	if r == nil {
		if _, ok := rs[file]; !ok {
			return nil
		}
		delete(rs, file)
	} else {
		rs[file] = *r
	}
	b, err := json.MarshalIndent(lockFile{Version: 1, Files: rs}, "", "  ")
	if err != nil {
		return fmt.Errorf("zoo: encoding lock file: %w", err)
	}
	return writeFileAtomic(filepath.Join(c.dir, LockFileName), append(b, '\n'))
}

// writeFileAtomic replaces path with data (internal/atomicfile), creating
// its folder if needed.
func writeFileAtomic(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("zoo: %w", err)
	}
	if err := atomicfile.Write(path, data); err != nil {
		return fmt.Errorf("zoo: %w", err)
	}
	return nil
}

// hashFile returns the hex SHA-256 and size of the file at path, reporting
// progress through report (may be nil).
func hashFile(ctx context.Context, path string, report func(done, total int64)) (string, int64, error) {
	if err := checkRegular(path); err != nil {
		return "", 0, err
	}
	f, err := os.OpenFile(path, os.O_RDONLY|oNoFollow, 0)
	if err != nil {
		return "", 0, fmt.Errorf("zoo: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", 0, fmt.Errorf("zoo: %w", err)
	}
	sum, n, err := digest.SHA256(ctx, f, st.Size(), report)
	if err != nil {
		return "", 0, fmt.Errorf("zoo: hashing %s: %w", path, err)
	}
	return sum, n, nil
}

func fileSize(path string) (int64, bool) {
	st, err := os.Lstat(path) // a link is not a cached file
	if err != nil || !st.Mode().IsRegular() {
		return 0, false
	}
	return st.Size(), true
}

// checkFolders fails with ErrUnsafeCache when a folder between the cache
// directory and file ("" for none) exists as anything but a folder: a
// symbolic link there would lead downloads, imports and removals out of
// the cache. (The cache directory itself may be a link: the user chose it.)
func (c cache) checkFolders(file string) error {
	if file == "" {
		return nil
	}
	dir := c.dir
	for _, part := range strings.Split(path.Dir(file), "/") {
		if part == "." {
			continue
		}
		dir = filepath.Join(dir, part)
		st, err := os.Lstat(dir)
		if errors.Is(err, fs.ErrNotExist) {
			return nil // made as a folder when needed
		}
		if err != nil {
			return fmt.Errorf("zoo: %w", err)
		}
		if !st.IsDir() {
			return fmt.Errorf("%w: %s is %v, not a folder; remove it (bitrun does not follow links in its cache)", ErrUnsafeCache, dir, st.Mode().Type())
		}
	}
	return nil
}

// checkRegular fails with ErrUnsafeCache when path exists and is not a
// regular file (a symbolic link, a FIFO, a folder); Lstat, so links are
// not followed.
func checkRegular(path string) error {
	st, err := os.Lstat(path)
	if err != nil || st.Mode().IsRegular() {
		return nil
	}
	return fmt.Errorf("%w: %s is %v; remove it (bitrun does not follow links in its cache)", ErrUnsafeCache, path, st.Mode().Type())
}
