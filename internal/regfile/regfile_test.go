package regfile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bitrun/bitrun/internal/testwait"
)

// TestRefusesNonRegular (issue 12, item 11): a FIFO (with no writer: opening
// it would block), a folder and a device are refused at once with an
// *Error; regular files and links to them open.
func TestRefusesNonRegular(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "x.png")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	reg := filepath.Join(dir, "a.npz")
	if err := os.WriteFile(reg, []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.npz")
	if err := os.Symlink(reg, link); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{fifo: "a named pipe", dir: "a folder", "/dev/zero": "a character device"} {
		err := testwait.Returns(t, 5*time.Second, "ReadFile("+path+")", func() error {
			_, err := ReadFile(path)
			return err
		})
		var e *Error
		if !errors.Is(err, ErrNotRegular) || !errors.As(err, &e) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want an *Error saying %s", path, err, want)
		}
		if err := Check(path); !errors.Is(err, ErrNotRegular) {
			t.Errorf("Check(%s) = %v", path, err)
		}
	}
	for _, p := range []string{reg, link} {
		if b, err := ReadFile(p); err != nil || string(b) != "data" {
			t.Errorf("%s: %q, %v", p, b, err)
		}
		if err := Check(p); err != nil {
			t.Errorf("Check(%s) = %v", p, err)
		}
	}
}
