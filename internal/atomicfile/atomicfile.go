// Package atomicfile writes whole files so that a reader sees either the old
// content or the new one, never a half-written file: the bytes go to a
// temporary file in the destination's folder, are synced, and the temporary
// file is renamed over the destination. A failed write removes the temporary
// file and leaves the destination untouched.
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
	if d, derr := os.Open(filepath.Dir(f.path)); derr == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
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
