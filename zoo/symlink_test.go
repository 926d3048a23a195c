package zoo

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestCacheDoesNotFollowLinks (issue 12, item 8): a .part (or .part.json)
// symbolic link planted in the cache makes a pull fail with ErrUnsafeCache
// and the file it points to is untouched (was: overwritten by the
// download); a link at the final path is replaced, never written through.
func TestCacheDoesNotFollowLinks(t *testing.T) {
	data := tinyBytes(t)
	for _, planted := range []string{"tiny.npz.part", "tiny.npz.part.json", "tiny.npz"} {
		t.Run(planted, func(t *testing.T) {
			s := newServer(t, map[string][]byte{testFile: data})
			dir := t.TempDir()
			victim := filepath.Join(t.TempDir(), "victim")
			if err := os.WriteFile(victim, []byte("precious"), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.MkdirAll(filepath.Join(dir, "test"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(victim, filepath.Join(dir, "test", planted)); err != nil {
				t.Fatal(err)
			}
			_, err := Pull(context.Background(), "test-tiny", s.opts(t, dir))
			if planted == "tiny.npz" {
				if err != nil {
					t.Fatal(err)
				}
				st, lerr := os.Lstat(filepath.Join(dir, "test", planted))
				if lerr != nil || !st.Mode().IsRegular() {
					t.Errorf("final path after the pull: %v, %v; want the downloaded regular file", st, lerr)
				}
			} else if !errors.Is(err, ErrUnsafeCache) {
				t.Fatalf("err = %v, want ErrUnsafeCache", err)
			}
			if b, _ := os.ReadFile(victim); string(b) != "precious" {
				t.Fatalf("the link's target was written: %q...", b[:min(len(b), 16)])
			}
		})
	}
}
