package data

import (
	"errors"
	"image"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/bitrun/bitrun/internal/regfile"
)

// TestFolderRefusesFIFO (issue 12, item 11): a FIFO named like an image in
// a dataset folder is refused with a clear error when its example is read
// (was: the read blocked forever, and Ctrl-C could not stop it).
func TestFolderRefusesFIFO(t *testing.T) {
	root := t.TempDir()
	cls := filepath.Join(root, "cats")
	if err := os.MkdirAll(cls, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cls, "a.png"), encPNG(t, image.NewGray(image.Rect(0, 0, 4, 4))), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(cls, "x.png"), 0o644); err != nil {
		t.Fatal(err)
	}
	ds, err := Open(root, "train")
	if err != nil {
		t.Fatal(err)
	}
	if ds.Len() != 2 {
		t.Fatalf("%d examples", ds.Len())
	}
	if _, err := ds.Image(0); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := ds.Image(1)
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, regfile.ErrNotRegular) {
			t.Fatalf("FIFO example: err = %v, want regfile.ErrNotRegular", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("reading the FIFO example still blocks after 5 s")
	}
}
