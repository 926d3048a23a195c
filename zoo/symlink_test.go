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

// TestCacheRefusesLinkedFolders: a folder of the cache (an entry's folder,
// or the lock folder) replaced by a symbolic link to another place makes
// pull, import and rm fail with ErrUnsafeCache, and nothing is written to
// or removed from the place it points to (a pull wrote the checkpoint
// there and rm deleted it, found by a security review).
func TestCacheRefusesLinkedFolders(t *testing.T) {
	data := tinyBytes(t)
	for _, linked := range []string{"test", lockDirName} {
		t.Run(linked, func(t *testing.T) {
			s := newServer(t, map[string][]byte{testFile: data})
			dir, outside := t.TempDir(), t.TempDir()
			victim := filepath.Join(outside, "tiny.npz")
			if err := os.WriteFile(victim, []byte("precious"), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(outside, filepath.Join(dir, linked)); err != nil {
				t.Fatal(err)
			}
			opts := s.opts(t, dir)
			if _, err := Pull(context.Background(), "test-tiny", opts); !errors.Is(err, ErrUnsafeCache) {
				t.Errorf("pull: %v, want ErrUnsafeCache", err)
			}
			src := filepath.Join(t.TempDir(), "tiny.npz")
			if err := os.WriteFile(src, data, 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := Import(context.Background(), src, "test-tiny", opts); !errors.Is(err, ErrUnsafeCache) {
				t.Errorf("import: %v, want ErrUnsafeCache", err)
			}
			if err := Remove(context.Background(), "test-tiny", opts); !errors.Is(err, ErrUnsafeCache) {
				t.Errorf("rm: %v, want ErrUnsafeCache", err)
			}
			ents, _ := os.ReadDir(outside)
			if b, _ := os.ReadFile(victim); string(b) != "precious" || len(ents) != 1 {
				t.Errorf("the linked folder changed: %d entries, victim %q", len(ents), b[:min(len(b), 16)])
			}
		})
	}
}
