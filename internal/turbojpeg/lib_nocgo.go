//go:build !cgo

package turbojpeg

import "fmt"

const cgoEnabled = false

type impl struct{ path string }

func (l *Lib) open(path string) error {
	return fmt.Errorf("%w: bitrun was built without cgo; rebuild with CGO_ENABLED=1 and a C compiler, and install libjpeg-turbo (Debian: apt-get install libturbojpeg0) to use it (tried %s)", ErrUnavailable, path)
}

func (l *Lib) close() error { return nil }

func (l *Lib) header(b []byte) (Header, error) {
	return Header{}, fmt.Errorf("%w: built without cgo", ErrUnavailable)
}

func (l *Lib) decode(b []byte, f Format, dst []byte, w, h int) error {
	return fmt.Errorf("%w: built without cgo", ErrUnavailable)
}
