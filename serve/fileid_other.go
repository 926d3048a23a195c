//go:build !linux

package serve

import (
	"fmt"
	"os"
)

// fileID identifies a version of a file for the repository's change
// detection: size and modification time.
func fileID(fi os.FileInfo) string {
	return fmt.Sprintf("%d:%d", fi.Size(), fi.ModTime().UnixNano())
}
