// Package atomicfile is the one place in bitrun that replaces files
// atomically, so that a reader sees either the old content or the new one,
// never a half-written file. A pending [File] ([Create], then [File.Commit]
// or [File.Cleanup]) takes the bytes in a temporary file in the
// destination's folder; Commit syncs it, renames it over the destination and
// syncs the folder. [Write] and [WriteJSON] do that for a byte slice;
// [Install] renames a file completed elsewhere (a download) the same way. A
// failed write removes the temporary file and leaves the destination
// untouched.
package atomicfile

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// File is a pending file, shaped like renameio's: written in full to a
// temporary file ".NAME.*.tmp" in the destination's folder, it replaces the
// destination only on Commit. Cleanup (deferred) removes it otherwise.
type File struct {
	*os.File
	path string
	done bool
}

// Create starts a pending file that Commit will rename to path (mode 0644).
func Create(path string) (*File, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".*.tmp")
	if err != nil {
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	return &File{File: tmp, path: path}, nil
}

// Commit syncs the pending file, renames it over the destination and syncs
// the folder (where the platform allows), so the new content survives a
// crash. After an error the destination is untouched; Cleanup removes the
// temporary file.
func (f *File) Commit() error {
	if f.done {
		return fmt.Errorf("write %s: already committed or cleaned up", f.path)
	}
	err := f.Chmod(0o644)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), f.path)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", f.path, err)
	}
	f.done = true
	syncDir(filepath.Dir(f.path))
	return nil
}

// Install replaces path with the complete file from, which must be in the
// same folder (a download's ".part" file, say): it syncs from, renames it
// over path and syncs the folder, as Commit does for a pending file. On
// error path is untouched and from is left for the caller.
func Install(from, path string) error {
	f, err := os.Open(from)
	if err == nil {
		err = f.Sync()
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err == nil {
		err = os.Rename(from, path)
	}
	if err != nil {
		return fmt.Errorf("install %s: %w", path, err)
	}
	syncDir(filepath.Dir(path))
	return nil
}

// syncDir makes a rename in dir durable; errors are ignored (not every
// platform can sync a folder).
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}

// Cleanup closes and removes the temporary file unless it was committed. It
// is idempotent: defer it right after Create.
func (f *File) Cleanup() error {
	if f.done {
		return nil
	}
	f.done = true
	f.Close()
	if err := os.Remove(f.Name()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// Write replaces path with b (mode 0644).
func Write(path string, b []byte) error {
	f, err := Create(path)
	if err != nil {
		return err
	}
	defer f.Cleanup()
	if _, err := f.Write(b); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Commit()
}

// WriteJSON replaces path with v as indented JSON and a final newline.
func WriteJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return Write(path, append(b, '\n'))
}

// RemoveTemps removes the temporary files that writers of this package (and
// model.SaveNPZ, which names them the same way: ".NAME.*.tmp") left in dir
// when their process was killed before the rename. Only regular files whose
// names have that shape are removed; a missing dir is not an error. It
// returns the names removed.
func RemoveTemps(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var removed []string
	for _, e := range entries {
		name := e.Name()
		if !e.Type().IsRegular() || !IsTemp(name) {
			continue
		}
		if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return removed, err
		}
		removed = append(removed, name)
	}
	return removed, nil
}

// IsTemp reports whether name has the shape of a temporary file of Write:
// ".NAME.RANDOM.tmp".
func IsTemp(name string) bool {
	if !strings.HasPrefix(name, ".") || !strings.HasSuffix(name, ".tmp") {
		return false
	}
	mid := strings.TrimSuffix(name[1:], ".tmp")
	i := strings.LastIndexByte(mid, '.')
	return i > 0 && i < len(mid)-1
}
