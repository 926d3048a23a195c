//go:build !unix

package regfile

import "os"

// openNonBlocking checks the path before opening it where O_NONBLOCK does
// not exist.
func openNonBlocking(path string) (*os.File, error) {
	if err := Check(path); err != nil {
		return nil, err
	}
	return os.Open(path)
}

func clearNonBlocking(*os.File) error { return nil }
