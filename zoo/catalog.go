package zoo

import (
	"fmt"
	"path"
	"strings"
	"sync"

	"github.com/bitrun/bitrun/model"
)

// DefaultBaseURL is where the BiT authors publish their checkpoints. A mirror
// with the same layout can replace it (Options.BaseURL).
const DefaultBaseURL = "https://storage.googleapis.com/bit_models/"

// Label files published next to the checkpoints (one label per line, in class order).
const (
	LabelsILSVRC2012  = "ilsvrc2012_wordnet_lemmas.txt"
	LabelsImageNet21k = "imagenet21k_wordnet_lemmas.txt"
)

// Groups of catalog entries.
const (
	GroupUpstream   = "upstream"   // BiT-S and BiT-M as pre-trained
	GroupILSVRC2012 = "ilsvrc2012" // BiT-M fine-tuned on ILSVRC-2012
	GroupCIFAR10    = "cifar10"    // BiT-M-R50x1 fine-tuned on CIFAR-10
	GroupDistilled  = "distilled"  // distilled R50x1 students and their R152x2 teachers
	GroupVTAB       = "vtab"       // BiT-M fine-tuned on the VTAB-1k tasks
	GroupCustom     = "custom"     // entries added by a program (NewCatalog, With)
)

// Entry describes one downloadable checkpoint.
type Entry struct {
	Name       string `json:"name"`             // catalog name, e.g. "BiT-M-R50x1"
	File       string `json:"file"`             // path below the base URL and the cache dir, e.g. "BiT-M-R50x1.npz"
	URL        string `json:"url,omitempty"`    // absolute URL overriding base URL + File (custom entries)
	Arch       string `json:"arch"`             // model.Arch name, e.g. "R50x1"
	Classes    int    `json:"classes"`          // head outputs
	Data       string `json:"data"`             // training data
	Resolution int    `json:"resolution"`       // recommended square input size (eval crop)
	Labels     string `json:"labels,omitempty"` // label file below the base URL, "" when none is published
	Size       int64  `json:"size,omitempty"`   // exact file size in bytes, 0 when unknown
	SHA256     string `json:"sha256,omitempty"` // pinned digest, "" when none is known (none are published)
	Group      string `json:"group"`
}

// URLFor returns the download URL of e under base (DefaultBaseURL when empty).
func (e Entry) URLFor(base string) string {
	if e.URL != "" {
		return e.URL
	}
	return joinURL(base, e.File)
}

func joinURL(base, file string) string {
	if base == "" {
		base = DefaultBaseURL
	}
	return strings.TrimSuffix(base, "/") + "/" + file
}

// EstimatedSize is the float32 payload of the checkpoint computed from its
// architecture (within a few KiB of the .npz size, which adds small headers).
func (e Entry) EstimatedSize() int64 {
	cfg, err := model.Arch(e.Arch, e.Classes)
	if err != nil {
		return 0
	}
	return cfg.ParamCount() * 4
}

// maxDownload bounds what the downloader accepts for e: a server that sends
// more (or announces more) is refused instead of filling the disk.
func (e Entry) maxDownload() int64 {
	if e.Size > 0 {
		return e.Size
	}
	est := e.EstimatedSize()
	if est == 0 {
		return 16 << 30
	}
	return est + est/4 + 64<<20
}

func (e Entry) validate() error {
	if _, err := ParseName(e.Name); err != nil {
		return err
	}
	if strings.Contains(e.Name, "@") {
		return fmt.Errorf("%w: entry name %q must not carry a digest", ErrName, e.Name)
	}
	if err := checkName(e.File); err != nil {
		return fmt.Errorf("zoo: entry %s: file: %w", e.Name, err)
	}
	if path.Ext(e.File) != ".npz" {
		return fmt.Errorf("zoo: entry %s: file %q must end in .npz", e.Name, e.File)
	}
	if e.Labels != "" {
		if err := checkName(e.Labels); err != nil {
			return fmt.Errorf("zoo: entry %s: labels: %w", e.Name, err)
		}
	}
	if _, err := model.Arch(e.Arch, e.Classes); err != nil {
		return fmt.Errorf("zoo: entry %s: %w", e.Name, err)
	}
	if e.SHA256 != "" {
		if _, err := parseDigest(e.SHA256); err != nil {
			return fmt.Errorf("zoo: entry %s: %w", e.Name, err)
		}
	}
	if e.Size < 0 || e.Resolution < 0 {
		return fmt.Errorf("zoo: entry %s: negative size or resolution", e.Name)
	}
	return nil
}

// Catalog is an immutable set of entries with case-insensitive lookup by name
// or by file path (with or without ".npz"). Safe for concurrent use.
type Catalog struct {
	entries []Entry
	index   map[string]int
}

// NewCatalog builds a catalog; names and files must be valid and unique.
func NewCatalog(entries ...Entry) (*Catalog, error) {
	c := &Catalog{index: make(map[string]int)}
	files := make(map[string]string)
	for _, e := range entries {
		if e.Group == "" {
			e.Group = GroupCustom
		}
		e.SHA256 = strings.ToLower(e.SHA256)
		if err := e.validate(); err != nil {
			return nil, err
		}
		key := strings.ToLower(e.Name)
		if _, dup := c.index[key]; dup {
			return nil, fmt.Errorf("zoo: duplicate catalog name %q", e.Name)
		}
		if other, dup := files[e.File]; dup {
			return nil, fmt.Errorf("zoo: entries %s and %s share the file %s", other, e.Name, e.File)
		}
		files[e.File] = e.Name
		c.index[key] = len(c.entries)
		c.entries = append(c.entries, e)
	}
	// File aliases never shadow names.
	for i, e := range c.entries {
		for _, alias := range []string{e.File, strings.TrimSuffix(e.File, ".npz")} {
			if _, taken := c.index[strings.ToLower(alias)]; !taken {
				c.index[strings.ToLower(alias)] = i
			}
		}
	}
	return c, nil
}

// With returns a new catalog holding c's entries followed by extra.
func (c *Catalog) With(extra ...Entry) (*Catalog, error) {
	all := append(append([]Entry(nil), c.entries...), extra...)
	return NewCatalog(all...)
}

// Entries returns a copy of the entries in catalog order.
func (c *Catalog) Entries() []Entry { return append([]Entry(nil), c.entries...) }

// Len is the number of entries.
func (c *Catalog) Len() int { return len(c.entries) }

// Lookup finds an entry by name or file path, ignoring case. A digest in the
// reference is ignored here (Pull honours it). Unknown names give a
// *NotFoundError (errors.Is ErrNotFound) suggesting close names.
func (c *Catalog) Lookup(name string) (Entry, error) {
	ref, err := ParseName(name)
	if err != nil {
		return Entry{}, err
	}
	if i, ok := c.index[strings.ToLower(ref.Name)]; ok {
		return c.entries[i], nil
	}
	names := make([]string, len(c.entries))
	for i, e := range c.entries {
		names[i] = e.Name
	}
	return Entry{}, &NotFoundError{Name: ref.Name, Suggestions: suggest(ref.Name, names, 3)}
}

// Default returns the catalog of every checkpoint the BiT authors released.
func Default() *Catalog { return defaultCatalog() }

var defaultCatalog = sync.OnceValue(func() *Catalog {
	c, err := NewCatalog(releasedEntries()...)
	if err != nil {
		panic("zoo: built-in catalog is invalid: " + err.Error()) // programmer error, covered by tests
	}
	return c
})

// VTABTask is one of the 19 VTAB-1k tasks the BiT-M fine-tunes were released for.
type VTABTask struct {
	Name    string // as in the released file names, e.g. "smallnorb-azimuth"
	Data    string // human-readable dataset and target
	Classes int
	Small   bool // images with area below 96x96: BiT-HyperRule trains at 128, else 480
}

// VTABTasks lists the tasks in the order of the BiT README's download pattern.
// Class counts follow the VTAB-1k task definitions (Zhai et al., 2019).
var VTABTasks = []VTABTask{
	{"caltech101", "VTAB-1k Caltech-101", 102, false},
	{"diabetic_retinopathy", "VTAB-1k Diabetic Retinopathy (severity)", 5, false},
	{"dtd", "VTAB-1k DTD textures", 47, false},
	{"oxford_flowers102", "VTAB-1k Oxford Flowers-102", 102, false},
	{"oxford_iiit_pet", "VTAB-1k Oxford-IIIT Pet", 37, false},
	{"resisc45", "VTAB-1k RESISC45", 45, false},
	{"sun397", "VTAB-1k SUN397", 397, false},
	{"cifar100", "VTAB-1k CIFAR-100", 100, true},
	{"eurosat", "VTAB-1k EuroSAT", 10, true},
	{"patch_camelyon", "VTAB-1k PatchCamelyon", 2, false},
	{"smallnorb-elevation", "VTAB-1k smallNORB elevation", 9, false},
	{"svhn", "VTAB-1k SVHN", 10, true},
	{"dsprites-orientation", "VTAB-1k dSprites orientation (16 bins)", 16, true},
	{"smallnorb-azimuth", "VTAB-1k smallNORB azimuth", 18, false},
	{"clevr-distance", "VTAB-1k CLEVR closest-object distance", 6, false},
	{"clevr-count", "VTAB-1k CLEVR object count", 8, false},
	{"dmlab", "VTAB-1k DMLab", 6, false},
	{"kitti-distance", "VTAB-1k KITTI closest-vehicle distance", 4, false},
	{"dsprites-xpos", "VTAB-1k dSprites x-position (16 bins)", 16, true},
}

// VTABArchs are the architectures the VTAB-1k fine-tunes exist for (no R152x2),
// and VTABRuns the number of runs released per task.
var (
	VTABArchs = []string{"R50x1", "R101x1", "R50x3", "R101x3", "R152x4"}
	VTABRuns  = 3
)

// releasedEntries generates the released checkpoints. Sources: the
// google-research/big_transfer README (file names, VTAB pattern, distilled
// models and their resolutions) and docs/bit-reference.md. Recommended
// resolutions: 224 for the upstream and distilled models (their training
// resolution), 480 for the ILSVRC-2012 and large-image VTAB fine-tunes and 128
// for CIFAR-10 and small-image VTAB tasks (the released BiT-HyperRule code).
func releasedEntries() []Entry {
	var es []Entry
	for _, a := range model.Released {
		es = append(es, Entry{Name: "BiT-S-" + a, File: "BiT-S-" + a + ".npz", Arch: a, Classes: 1000,
			Data: "ILSVRC-2012", Resolution: 224, Labels: LabelsILSVRC2012, Group: GroupUpstream})
	}
	for _, a := range model.Released {
		es = append(es, Entry{Name: "BiT-M-" + a, File: "BiT-M-" + a + ".npz", Arch: a, Classes: 21843,
			Data: "ImageNet-21k", Resolution: 224, Labels: LabelsImageNet21k, Group: GroupUpstream})
	}
	for _, a := range model.Released {
		n := "BiT-M-" + a + "-ILSVRC2012"
		es = append(es, Entry{Name: n, File: n + ".npz", Arch: a, Classes: 1000,
			Data: "ImageNet-21k, fine-tuned on ILSVRC-2012", Resolution: 480, Labels: LabelsILSVRC2012, Group: GroupILSVRC2012})
	}
	es = append(es, Entry{Name: "BiT-M-R50x1-CIFAR10", File: "BiT-M-R50x1-CIFAR10.npz", Arch: "R50x1", Classes: 10,
		Data: "ImageNet-21k, fine-tuned on CIFAR-10", Resolution: 128, Group: GroupCIFAR10})
	for _, d := range []struct {
		name, file, arch, data string
		res                    int
	}{
		{"BiT-R50x1-distilled-224", "distill/R50x1_224.npz", "R50x1", "ILSVRC-2012, distilled from a BiT-M-R152x2 teacher", 224},
		{"BiT-R50x1-distilled-160", "distill/R50x1_160.npz", "R50x1", "ILSVRC-2012, distilled from a BiT-M-R152x2 teacher", 160},
		{"BiT-M-R152x2-teacher-224", "distill/R152x2_T_224.npz", "R152x2", "ImageNet-21k, fine-tuned on ILSVRC-2012 at 224 (distillation teacher)", 224},
		{"BiT-M-R152x2-teacher-384", "distill/R152x2_T_384.npz", "R152x2", "ImageNet-21k, fine-tuned on ILSVRC-2012 at 384 (distillation teacher)", 384},
	} {
		es = append(es, Entry{Name: d.name, File: d.file, Arch: d.arch, Classes: 1000, Data: d.data,
			Resolution: d.res, Labels: LabelsILSVRC2012, Group: GroupDistilled})
	}
	for _, a := range VTABArchs {
		for run := 0; run < VTABRuns; run++ {
			for _, t := range VTABTasks {
				n := fmt.Sprintf("BiT-M-%s-run%d-%s", a, run, t.Name)
				res := 480
				if t.Small {
					res = 128
				}
				es = append(es, Entry{Name: n, File: "vtab/" + n + ".npz", Arch: a, Classes: t.Classes,
					Data: "ImageNet-21k, fine-tuned on " + t.Data, Resolution: res, Group: GroupVTAB})
			}
		}
	}
	return es
}
