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
	"github.com/bitrun/bitrun/internal/testwait"
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
	err = testwait.Returns(t, 5*time.Second, "reading the FIFO example", func() error {
		_, err := ds.Image(1)
		return err
	})
	if !errors.Is(err, regfile.ErrNotRegular) {
		t.Fatalf("FIFO example: err = %v, want regfile.ErrNotRegular", err)
	}
}
