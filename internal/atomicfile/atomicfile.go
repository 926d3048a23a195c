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

// Write replaces path with b (mode 0644).
func Write(path string, b []byte) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			os.Remove(tmp.Name())
		}
	}()
	if _, err = tmp.Write(b); err == nil {
		err = tmp.Chmod(0o644)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
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
