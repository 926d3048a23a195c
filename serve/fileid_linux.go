//go:build linux

package serve

import (
	"fmt"
	"os"
	"syscall"
)

// fileID identifies a version of a file for the repository's change
// detection: size and modification time, plus the inode (a file replaced by
// a rename is a new inode) and the status-change time (an in-place rewrite
// moves it even when the modification time is put back), which a copy that
// preserves times cannot fake.
func fileID(fi os.FileInfo) string {
	id := fmt.Sprintf("%d:%d", fi.Size(), fi.ModTime().UnixNano())
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		id += fmt.Sprintf(":%d:%d:%d", st.Ino, st.Ctim.Sec, st.Ctim.Nsec)
	}
	return id
}
