package main

import (
	"os"
	"path/filepath"
)

// resolveModelDir reads a serve --model-dir folder, laid out as KServe's
// storage initializer leaves a model at /mnt/models: a single model
// (DIR/model.onnx, or the folder's only *.onnx file, as a storageUri naming
// one file gives) or a model repository (DIR/NAME/VERSION/model.onnx). It
// returns the ONNX file of a single model, or "" for a repository.
func resolveModelDir(dir string) (string, error) {
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return "", usagef("--model-dir %q: not a folder", dir)
	}
	if fi, err := os.Stat(filepath.Join(dir, "model.onnx")); err == nil && fi.Mode().IsRegular() {
		return filepath.Join(dir, "model.onnx"), nil
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.onnx"))
	if err != nil {
		return "", usagef("--model-dir %q: %v", dir, err)
	}
	switch len(files) {
	case 0:
		return "", nil
	case 1:
		return files[0], nil
	}
	return "", usagef("--model-dir %q holds %d .onnx files: keep one (or a model.onnx), or lay it out as a repository (NAME/VERSION/model.onnx)", dir, len(files))
}

// repositoryHasModel reports whether a model repository holds a model folder of that name.
func repositoryHasModel(dir, name string) bool {
	fi, err := os.Stat(filepath.Join(dir, name))
	return err == nil && fi.IsDir()
}
