package serve

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// A model file rewritten in place or replaced by a rename with the same
// size and modification time gets a new fileID (Linux: inode and status
// change time), so repository polling reloads it.
func TestFileID(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("inode and ctime are read on Linux only; elsewhere fileID is size and mtime")
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "model.onnx")
	id := func() string {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		return fileID(fi)
	}
	mtime := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	write := func(path, content string) {
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(path, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	write(p, "version A")
	first := id()
	time.Sleep(10 * time.Millisecond)
	write(p, "version B") // same size, same mtime
	second := id()
	if second == first {
		t.Errorf("in-place rewrite keeps the id %s", first)
	}
	time.Sleep(10 * time.Millisecond)
	tmp := filepath.Join(dir, "new.onnx")
	write(tmp, "version C")
	if err := os.Rename(tmp, p); err != nil {
		t.Fatal(err)
	}
	if third := id(); third == second {
		t.Errorf("replacement by rename keeps the id %s", second)
	}
	if again := id(); again != id() {
		t.Errorf("id of an unchanged file moves: %s", again)
	}
}
