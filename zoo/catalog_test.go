package zoo

import (
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/bitrun/bitrun/model"
)

func TestDefaultCatalogContents(t *testing.T) {
	c := Default()
	groups := map[string]int{}
	seen := map[string]bool{}
	for _, e := range c.Entries() {
		groups[e.Group]++
		if seen[strings.ToLower(e.Name)] {
			t.Errorf("duplicate name %s", e.Name)
		}
		seen[strings.ToLower(e.Name)] = true
		if e.SHA256 != "" {
			t.Errorf("%s: no digests are published, yet one is pinned", e.Name)
		}
		u, err := url.Parse(e.URLFor(""))
		if err != nil || u.Scheme != "https" || u.Host != "storage.googleapis.com" || !strings.HasPrefix(u.Path, "/bit_models/") {
			t.Errorf("%s: URL %s", e.Name, e.URLFor(""))
		}
		if _, err := model.Arch(e.Arch, e.Classes); err != nil || e.Resolution <= 0 || e.Data == "" {
			t.Errorf("%s: arch %s classes %d resolution %d data %q", e.Name, e.Arch, e.Classes, e.Resolution, e.Data)
		}
		if e.EstimatedSize() <= 0 {
			t.Errorf("%s: no size estimate", e.Name)
		}
	}
	want := map[string]int{GroupUpstream: 12, GroupILSVRC2012: 6, GroupCIFAR10: 1, GroupDistilled: 4,
		GroupVTAB: len(VTABArchs) * VTABRuns * len(VTABTasks)}
	for g, n := range want {
		if groups[g] != n {
			t.Errorf("group %s: %d entries, want %d", g, groups[g], n)
		}
	}
	if len(VTABTasks) != 19 || want[GroupVTAB] != 285 {
		t.Errorf("VTAB: %d tasks, %d models; the BiT README releases 19 tasks, 285 models", len(VTABTasks), want[GroupVTAB])
	}

	for _, tc := range []struct {
		name, url, arch string
		classes, res    int
	}{
		{"BiT-M-R50x1", "https://storage.googleapis.com/bit_models/BiT-M-R50x1.npz", "R50x1", 21843, 224},
		{"BiT-S-R152x4", "https://storage.googleapis.com/bit_models/BiT-S-R152x4.npz", "R152x4", 1000, 224},
		{"BiT-M-R101x3-ILSVRC2012", "https://storage.googleapis.com/bit_models/BiT-M-R101x3-ILSVRC2012.npz", "R101x3", 1000, 480},
		{"BiT-M-R50x1-CIFAR10", "https://storage.googleapis.com/bit_models/BiT-M-R50x1-CIFAR10.npz", "R50x1", 10, 128},
		{"BiT-R50x1-distilled-160", "https://storage.googleapis.com/bit_models/distill/R50x1_160.npz", "R50x1", 1000, 160},
		{"BiT-M-R152x2-teacher-384", "https://storage.googleapis.com/bit_models/distill/R152x2_T_384.npz", "R152x2", 1000, 384},
		{"BiT-M-R152x4-run2-smallnorb-azimuth", "https://storage.googleapis.com/bit_models/vtab/BiT-M-R152x4-run2-smallnorb-azimuth.npz", "R152x4", 18, 480},
		{"BiT-M-R50x1-run0-cifar100", "https://storage.googleapis.com/bit_models/vtab/BiT-M-R50x1-run0-cifar100.npz", "R50x1", 100, 128},
	} {
		e, err := c.Lookup(tc.name)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if e.URLFor("") != tc.url || e.Arch != tc.arch || e.Classes != tc.classes || e.Resolution != tc.res {
			t.Errorf("%s: %s %s %d %d", tc.name, e.URLFor(""), e.Arch, e.Classes, e.Resolution)
		}
	}
	if e, _ := c.Lookup("BiT-M-R50x1-ILSVRC2012"); e.Labels != LabelsILSVRC2012 {
		t.Errorf("ILSVRC-2012 fine-tune labels %q", e.Labels)
	}
	if e, _ := c.Lookup("BiT-M-R50x1"); e.URLFor("http://mirror.local/bit") != "http://mirror.local/bit/BiT-M-R50x1.npz" {
		t.Errorf("mirror URL %s", e.URLFor("http://mirror.local/bit"))
	}
	// No R152x2 VTAB models were released.
	if _, err := c.Lookup("BiT-M-R152x2-run0-dtd"); !errors.Is(err, ErrNotFound) {
		t.Errorf("R152x2 VTAB entry: %v", err)
	}
}

func TestLookup(t *testing.T) {
	c := Default()
	for _, tc := range []struct{ in, want string }{
		{"bit-m-r50x1", "BiT-M-R50x1"},
		{"  BiT-S-R101x1 ", "BiT-S-R101x1"},
		{"distill/R50x1_224", "BiT-R50x1-distilled-224"},
		{"distill/R50x1_224.npz", "BiT-R50x1-distilled-224"},
		{"vtab/BiT-M-R50x3-run1-dtd", "BiT-M-R50x3-run1-dtd"},
		{"BiT-M-R50x1@sha256:" + strings.Repeat("ab", 32), "BiT-M-R50x1"},
	} {
		e, err := c.Lookup(tc.in)
		if err != nil || e.Name != tc.want {
			t.Errorf("Lookup(%q) = %s, %v; want %s", tc.in, e.Name, err, tc.want)
		}
	}
	for _, tc := range []struct {
		in      string
		suggest string
	}{
		{"BiT-M-R50x2", "BiT-M-R50x1"},
		{"BiT-M-R50X3-ilsvrc", "BiT-M-R50x3-ILSVRC2012"},
		{"bit-s-r152", "BiT-S-R152x2"},
	} {
		_, err := c.Lookup(tc.in)
		var nf *NotFoundError
		if !errors.Is(err, ErrNotFound) || !errors.As(err, &nf) {
			t.Errorf("Lookup(%q): %v, want ErrNotFound", tc.in, err)
			continue
		}
		if !strings.Contains(err.Error(), tc.suggest) || len(nf.Suggestions) > 3 {
			t.Errorf("Lookup(%q): %v; want a suggestion of %s", tc.in, err, tc.suggest)
		}
	}
	if _, err := c.Lookup("zzzzzzzzzzzzzzzzzzzzzzzzzzzz"); err == nil || !strings.Contains(err.Error(), "zoo list") {
		t.Errorf("far-off name: %v", err)
	}
	if _, err := c.Lookup("../etc/passwd"); !errors.Is(err, ErrName) {
		t.Errorf("path traversal: %v", err)
	}
}

func TestNewCatalogRejectsBadEntries(t *testing.T) {
	good := testEntry()
	for _, tc := range []struct {
		name string
		mod  func(e *Entry)
	}{
		{"traversal", func(e *Entry) { e.File = "../x.npz" }},
		{"absolute", func(e *Entry) { e.File = "/tmp/x.npz" }},
		{"not npz", func(e *Entry) { e.File = "x.bin" }},
		{"bad arch", func(e *Entry) { e.Arch = "R42x1" }},
		{"no classes", func(e *Entry) { e.Classes = 0 }},
		{"bad digest", func(e *Entry) { e.SHA256 = "abc" }},
		{"bad name", func(e *Entry) { e.Name = "a b" }},
		{"digest in name", func(e *Entry) { e.Name = "x@sha256:" + strings.Repeat("0", 64) }},
		{"bad labels", func(e *Entry) { e.Labels = "../../labels.txt" }},
	} {
		e := good
		tc.mod(&e)
		if _, err := NewCatalog(e); err == nil {
			t.Errorf("%s: accepted %+v", tc.name, e)
		}
	}
	if _, err := NewCatalog(good, good); err == nil {
		t.Error("duplicate names accepted")
	}
	other := good
	other.Name = "other"
	if _, err := NewCatalog(good, other); err == nil {
		t.Error("shared file accepted")
	}
	c, err := Default().With(good)
	if err != nil || c.Len() != Default().Len()+1 {
		t.Fatalf("With: %v", err)
	}
	if e, err := c.Lookup("test-tiny"); err != nil || e.Group != GroupCustom {
		t.Fatalf("custom entry: %+v %v", e, err)
	}
}

func TestEstimatedSize(t *testing.T) {
	e, _ := Default().Lookup("BiT-S-R50x1")
	// ResNet-50 with a 1000-class head: 25.5M parameters.
	if got := float64(e.EstimatedSize()) / 4 / 1e6; got < 25 || got > 26 {
		t.Fatalf("BiT-S-R50x1: %.2fM parameters, want ~25.5M", got)
	}
}
