package zoo

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestLabelFilesAreValidated (issue 12, item 9): an HTML page served as the
// label list fails the pull (ErrLabels) and is neither cached nor recorded;
// one already cached and pinned by an older version fails Verify and is
// downloaded again by the next Pull; a list of the wrong length fails too.
func TestLabelFilesAreValidated(t *testing.T) {
	data := tinyBytes(t)
	good := []byte("a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n")
	html := []byte("<!DOCTYPE html><html><body>Rate limited</body></html>\n")
	e := testEntry()
	e.Labels = "labels.txt"
	for name, body := range map[string][]byte{"html": html, "short": []byte("a\nb\n"), "binary": append([]byte("a\x00b"), good...)} {
		t.Run(name, func(t *testing.T) {
			s := newServer(t, map[string][]byte{testFile: data, "labels.txt": body})
			dir := t.TempDir()
			o := s.opts(t, dir)
			o.Catalog = mustCatalog(t, e)
			_, err := Pull(context.Background(), "test-tiny", o)
			if !errors.Is(err, ErrLabels) {
				t.Fatalf("err = %v, want ErrLabels", err)
			}
			if exists(filepath.Join(dir, "labels.txt")) {
				t.Error("bad label file cached")
			}
			if _, ok, _ := (cache{dir}).record("labels.txt"); ok {
				t.Error("bad label file recorded")
			}
		})
	}

	// An HTML label file cached and recorded before this check existed.
	s := newServer(t, map[string][]byte{testFile: data, "labels.txt": good})
	dir := t.TempDir()
	o := s.opts(t, dir)
	o.Catalog = mustCatalog(t, e)
	if err := os.WriteFile(filepath.Join(dir, "labels.txt"), html, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := (cache{dir}).setRecord(context.Background(), "labels.txt", &record{Name: "test-tiny", SHA256: sha(html), Size: int64(len(html)), Recorded: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if _, err := Pull(context.Background(), "test-tiny", o); err != nil {
		t.Fatalf("re-pull over a bad cached label file: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "labels.txt")); string(b) != string(good) {
		t.Fatalf("label file after re-pull: %q", b)
	}
	if r, ok, _ := (cache{dir}).record("labels.txt"); !ok || r.SHA256 != sha(good) {
		t.Fatalf("record after re-pull: %+v %v", r, ok)
	}
	if _, err := Verify(context.Background(), "test-tiny", o); err != nil {
		t.Fatalf("verify after re-pull: %v", err)
	}
	// Verify reports a bad cached label file even when the lock file pins it.
	if err := os.WriteFile(filepath.Join(dir, "labels.txt"), html, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := (cache{dir}).setRecord(context.Background(), "labels.txt", &record{Name: "test-tiny", SHA256: sha(html), Size: int64(len(html)), Recorded: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(context.Background(), "test-tiny", o); !errors.Is(err, ErrLabels) {
		t.Fatalf("verify of an HTML label file: %v, want ErrLabels", err)
	}
}
