package data

import (
	"fmt"
	"hash/fnv"
	"image"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/bitrun/bitrun/internal/regfile"
)

// ImageExtensions are the file extensions (lower case) an image folder
// dataset picks up.
var ImageExtensions = []string{".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp"}

// folderSet is a dataset of image files, one folder per class; images are
// decoded on demand.
type folderSet struct {
	files     []string
	labels    []int
	classes   []string
	maxPixels int
}

func (d *folderSet) Len() int          { return len(d.files) }
func (d *folderSet) Classes() []string { return d.classes }
func (d *folderSet) Label(i int) int   { return d.labels[i] }

// Image opens and decodes file i with Decode and DefaultMaxPixels.
func (d *folderSet) Image(i int) (image.Image, error) {
	if i < 0 || i >= len(d.files) {
		return nil, fmt.Errorf("data: index %d out of range [0, %d)", i, len(d.files))
	}
	f, err := regfile.Open(d.files[i])
	if err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	defer f.Close()
	m, err := Decode(f, d.maxPixels)
	if err != nil {
		return nil, fmt.Errorf("%w (file %s)", err, d.files[i])
	}
	return m, nil
}

// Path returns the file of example i.
func (d *folderSet) Path(i int) string { return d.files[i] }

func isImageFile(name string) bool {
	if strings.HasPrefix(name, ".") {
		return false
	}
	return slices.Contains(ImageExtensions, strings.ToLower(filepath.Ext(name)))
}

// subdirs lists the non-hidden sub-folders of dir, sorted.
func subdirs(dir string) ([]string, error) {
	return entries(dir, func(e os.DirEntry) bool {
		return isDir(filepath.Join(dir, e.Name())) && !strings.HasPrefix(e.Name(), ".")
	})
}

func isDir(p string) bool {
	st, err := os.Stat(p) // follows symlinks
	return err == nil && st.IsDir()
}

// imageFiles lists the image files directly in dir, sorted by name.
func imageFiles(dir string) ([]string, error) {
	return entries(dir, func(e os.DirEntry) bool { return !e.IsDir() && isImageFile(e.Name()) })
}

// entries lists the names of the entries of dir that keep accepts, sorted
// by name (as os.ReadDir returns them).
func entries(dir string, keep func(os.DirEntry) bool) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	var out []string
	for _, e := range ents {
		if keep(e) {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// splitFolders are the folder names that mark the PATH/SPLIT/CLASS layout.
var splitFolders = []string{"train", "test", "val", "validation"}

// openFolder opens an image-folder dataset (see Open).
func openFolder(root, split string) (Dataset, error) {
	hasSplits := false
	for _, s := range splitFolders {
		if isDir(filepath.Join(root, s)) {
			hasSplits = true
		}
	}
	d := &folderSet{maxPixels: DefaultMaxPixels}
	if hasSplits {
		dir := filepath.Join(root, split)
		if !isDir(dir) {
			return nil, fmt.Errorf("%w: %q has split folders but no %q", ErrSplit, root, split)
		}
		// Classes are the union over all splits so that labels agree between them.
		var classes []string
		for _, s := range append(slices.Clone(splitFolders), split) {
			sd := filepath.Join(root, s)
			if !isDir(sd) {
				continue
			}
			cs, err := subdirs(sd)
			if err != nil {
				return nil, err
			}
			classes = append(classes, cs...)
		}
		slices.Sort(classes)
		d.classes = slices.Compact(classes)
		for label, c := range d.classes {
			cdir := filepath.Join(dir, c)
			if !isDir(cdir) {
				continue
			}
			names, err := imageFiles(cdir)
			if err != nil {
				return nil, err
			}
			for _, n := range names {
				d.files = append(d.files, filepath.Join(cdir, n))
				d.labels = append(d.labels, label)
			}
		}
	} else {
		if split != "train" && split != "test" && split != SplitAll {
			return nil, fmt.Errorf("%w: %q: want train, test or all for a folder without split folders", ErrSplit, split)
		}
		classes, err := subdirs(root)
		if err != nil {
			return nil, err
		}
		d.classes = classes
		for label, c := range classes {
			names, err := imageFiles(filepath.Join(root, c))
			if err != nil {
				return nil, err
			}
			for _, n := range names {
				if split != SplitAll && InTrainSplit(c, n) != (split == "train") {
					continue
				}
				d.files = append(d.files, filepath.Join(root, c, n))
				d.labels = append(d.labels, label)
			}
		}
	}
	if len(d.classes) == 0 {
		return nil, fmt.Errorf("%w: no class folders in %s", ErrBadDataset, root)
	}
	if len(d.files) == 0 {
		return nil, fmt.Errorf("%w: no images (%s) for split %q under %s", ErrBadDataset, strings.Join(ImageExtensions, " "), split, root)
	}
	return d, nil
}

// SplitAll is the split of a folder dataset without split folders that
// takes every image (train and test take the 80/20 parts of InTrainSplit).
const SplitAll = "all"

// InTrainSplit reports whether file name of class goes to the train part of
// the deterministic 80/20 split used for folders without split sub-folders:
// FNV-1a (64 bit) of "class/name" modulo 10 below 8. The decision depends on
// the names only, so adding files does not move existing ones.
func InTrainSplit(class, name string) bool {
	h := fnv.New64a()
	h.Write([]byte(class + "/" + name))
	return h.Sum64()%10 < 8
}
