package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/bitrun/bitrun/export/onnxpb"
)

// File kinds sniffFile tells apart.
const (
	kindNPZ    = ".npz checkpoint"
	kindONNX   = "ONNX model"
	kindImage  = "image"
	kindFolder = "folder"
	kindOther  = "unknown"
)

// sniffFile says what the file at path is from its first bytes (a zip
// archive is a .npz checkpoint; a parseable ONNX model header is an ONNX
// model), and fails with "no such file" for a missing one.
func sniffFile(path string) (string, error) {
	st, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("%s: no such file: %w", path, fs.ErrNotExist)
	}
	if err != nil {
		return "", err
	}
	if st.IsDir() {
		return kindFolder, nil
	}
	if !st.Mode().IsRegular() {
		return kindOther, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	head := make([]byte, 8)
	n, _ := io.ReadFull(f, head)
	head = head[:n]
	switch {
	case bytes.HasPrefix(head, []byte("PK\x03\x04")) || bytes.HasPrefix(head, []byte("PK\x05\x06")):
		return kindNPZ, nil
	case bytes.HasPrefix(head, []byte("\x89PNG")), bytes.HasPrefix(head, []byte("\xff\xd8\xff")),
		bytes.HasPrefix(head, []byte("GIF8")), bytes.HasPrefix(head, []byte("BM")),
		len(head) >= 4 && bytes.Equal(head[:4], []byte("RIFF")):
		return kindImage, nil
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return kindOther, nil
	}
	if h, err := onnxpb.ReadHeader(f); err == nil && h.IRVersion > 0 && h.GraphBytes > 0 {
		return kindONNX, nil
	}
	return kindOther, nil
}

// checkModelFile fails with a message that says what to do when the file
// given to flag is missing or not of kind want: an ONNX model given to
// --weights says "use --onnx", a checkpoint given to --onnx "use --weights".
func checkModelFile(path, flag, want string) error {
	kind, err := sniffFile(path)
	if err != nil {
		return fmt.Errorf("%s %w", flag, err)
	}
	if kind == want {
		return nil
	}
	switch kind {
	case kindONNX:
		return usagef("%s %s: this is an ONNX model, not a %s: use --onnx %s", flag, path, want, path)
	case kindNPZ:
		return usagef("%s %s: this is a .npz checkpoint, not an %s: use --weights %s", flag, path, want, path)
	case kindFolder:
		return usagef("%s %s: this is a folder, not a %s", flag, path, want)
	case kindImage:
		return usagef("%s %s: this is an image, not a %s", flag, path, want)
	}
	return usagef("%s %s: not a %s (neither a zip archive nor an ONNX model)", flag, path, want)
}
