package atomicfile

import (
	"os"
	"path/filepath"
	"testing"
)

func TestWriteReplacesAndLeavesNoTemp(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f.json")
	if err := Write(p, []byte("old")); err != nil {
		t.Fatal(err)
	}
	if err := WriteJSON(p, map[string]int{"a": 1}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil || string(b) != "{\n  \"a\": 1\n}\n" {
		t.Fatalf("content %q, %v", b, err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("%d files in the folder, want 1 (temp file left?)", len(entries))
	}
}

func TestWriteFailureKeepsOldFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	if err := Write(p, []byte("old")); err != nil {
		t.Fatal(err)
	}
	// A value JSON cannot encode fails before anything is written.
	if err := WriteJSON(p, func() {}); err == nil {
		t.Fatal("unencodable value accepted")
	}
	// Writing into a missing folder fails and creates nothing.
	if err := Write(filepath.Join(dir, "missing", "f"), []byte("x")); err == nil {
		t.Fatal("write into a missing folder succeeded")
	}
	if b, _ := os.ReadFile(p); string(b) != "old" {
		t.Errorf("old file changed to %q", b)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("%d files in the folder, want 1", len(entries))
	}
}

// TestRemoveTemps: temporary files a killed writer left (".NAME.RAND.tmp")
// go; everything else, links and folders of that shape included, stays.
func TestRemoveTemps(t *testing.T) {
	dir := t.TempDir()
	keep := []string{"weights.npz", ".hidden", "x.tmp", ".tmp", "..tmp", ".a.tmp"}
	gone := []string{".weights-00000005.npz.123.tmp", ".checkpoint.json.9.tmp"}
	for _, n := range append(append([]string{}, keep...), gone...) {
		if err := os.WriteFile(filepath.Join(dir, n), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(filepath.Join(dir, "weights.npz"), filepath.Join(dir, ".link.npz.1.tmp")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, ".dir.x.1.tmp"), 0o755); err != nil {
		t.Fatal(err)
	}
	removed, err := RemoveTemps(dir)
	if err != nil || len(removed) != len(gone) {
		t.Fatalf("removed %v, %v; want %v", removed, err, gone)
	}
	for _, n := range append(keep, ".link.npz.1.tmp", ".dir.x.1.tmp") {
		if _, err := os.Lstat(filepath.Join(dir, n)); err != nil {
			t.Errorf("%s removed", n)
		}
	}
	if r, err := RemoveTemps(filepath.Join(dir, "missing")); err != nil || r != nil {
		t.Errorf("missing folder: %v, %v", r, err)
	}
}

// TestPendingFile: a pending file replaces the destination only on Commit;
// Cleanup without Commit leaves the old content and no temporary file, and
// is idempotent.
func TestPendingFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "w.npz")
	if err := os.WriteFile(path, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("half")); err != nil {
		t.Fatal(err)
	}
	if err := f.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if err := f.Cleanup(); err != nil {
		t.Fatalf("second Cleanup: %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "old" {
		t.Fatalf("after Cleanup: %q", b)
	}
	f, err = Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Cleanup()
	if _, err := f.Write([]byte("new")); err != nil {
		t.Fatal(err)
	}
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := f.Commit(); err == nil {
		t.Error("second Commit: no error")
	}
	st, err := os.Stat(path)
	if b, _ := os.ReadFile(path); string(b) != "new" || err != nil || st.Mode().Perm() != 0o644 {
		t.Errorf("after Commit: %q, %v, %v", b, st.Mode(), err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("left in the folder: %v", ents)
	}
}

// TestInstall: a complete file is renamed over the destination; a missing
// source leaves the destination as it was.
func TestInstall(t *testing.T) {
	dir := t.TempDir()
	p, part := filepath.Join(dir, "m.npz"), filepath.Join(dir, "m.npz.part")
	if err := os.WriteFile(p, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Install(part, p); err == nil {
		t.Fatal("install of a missing file succeeded")
	}
	if err := os.WriteFile(part, []byte("new"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Install(part, p); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != "new" {
		t.Errorf("content %q, want new", b)
	}
	if _, err := os.Stat(part); !os.IsNotExist(err) {
		t.Errorf("source still there: %v", err)
	}
}
