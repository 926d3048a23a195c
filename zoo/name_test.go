package zoo

import (
	"errors"
	"path"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseName(t *testing.T) {
	d := strings.Repeat("0f", 32)
	for _, tc := range []struct {
		in   string
		want Ref
		ok   bool
	}{
		{"BiT-M-R50x1", Ref{Name: "BiT-M-R50x1"}, true},
		{" BiT-M-R50x1\n", Ref{Name: "BiT-M-R50x1"}, true},
		{"vtab/BiT-M-R50x1-run0-dtd", Ref{Name: "vtab/BiT-M-R50x1-run0-dtd"}, true},
		{"BiT-M-R50x1@sha256:" + d, Ref{Name: "BiT-M-R50x1", Digest: d}, true},
		{"BiT-M-R50x1@sha256:" + strings.ToUpper(d), Ref{Name: "BiT-M-R50x1", Digest: d}, true},
		{"BiT-M-R50x1@" + d, Ref{Name: "BiT-M-R50x1", Digest: d}, true},
		{"", Ref{}, false},
		{"@sha256:" + d, Ref{}, false},
		{"BiT-M-R50x1@sha256:abc", Ref{}, false},
		{"BiT-M-R50x1@sha256:" + strings.Repeat("zz", 32), Ref{}, false},
		{"../x", Ref{}, false},
		{"a/../b", Ref{}, false},
		{"/abs", Ref{}, false},
		{"a//b", Ref{}, false},
		{"a\\b", Ref{}, false},
		{"a b", Ref{}, false},
		{"ä", Ref{}, false},
		{strings.Repeat("a", MaxNameLen+1), Ref{}, false},
	} {
		got, err := ParseName(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseName(%q) = %+v, %v", tc.in, got, err)
		}
		if err != nil && !errors.Is(err, ErrName) {
			t.Errorf("ParseName(%q): %v does not wrap ErrName", tc.in, err)
		}
	}
}

// FuzzParseName checks the limits every accepted reference obeys: bounded,
// round-trips through String, and can never name a path outside the cache.
func FuzzParseName(f *testing.F) {
	for _, s := range []string{"BiT-M-R50x1", "distill/R50x1_224.npz", "vtab/BiT-M-R50x1-run0-dtd",
		"BiT-M-R50x1@sha256:" + strings.Repeat("ab", 32), "../x", "a/./b", "x@", "@", "a@b@c", " BiT "} {
		f.Add(s)
	}
	cat := Default()
	f.Fuzz(func(t *testing.T, s string) {
		ref, err := ParseName(s)
		if err != nil {
			if !errors.Is(err, ErrName) {
				t.Fatalf("error %v does not wrap ErrName", err)
			}
			if ref != (Ref{}) {
				t.Fatal("non-zero Ref with an error")
			}
			return
		}
		if ref.Name == "" || len(ref.Name) > MaxNameLen {
			t.Fatalf("accepted name of length %d", len(ref.Name))
		}
		if ref.Digest != "" && len(ref.Digest) != 64 {
			t.Fatalf("digest %q", ref.Digest)
		}
		again, err := ParseName(ref.String())
		if err != nil || again != ref {
			t.Fatalf("round trip %q -> %+v -> %q -> %+v, %v", s, ref, ref.String(), again, err)
		}
		// The name, used as a cache path, stays inside the cache.
		dir := filepath.FromSlash("/cache/bitrun")
		p := cache{dir: dir}.path(ref.Name)
		if rel, err := filepath.Rel(dir, p); err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) || path.IsAbs(ref.Name) {
			t.Fatalf("%q escapes the cache: %s", ref.Name, p)
		}
		// Lookup never panics and either finds an entry or says why not.
		if _, err := cat.Lookup(s); err != nil && !errors.Is(err, ErrNotFound) {
			t.Fatalf("Lookup(%q): %v", s, err)
		}
	})
}
