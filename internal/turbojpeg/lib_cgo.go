//go:build cgo

package turbojpeg

/*
#include "bittj.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"unsafe"

	"github.com/bitrun/bitrun/internal/dynlib"
)

// Symbol slots filled by tj_open.
const (
	symInit = iota
	symHeader
	symDecompress
	symDestroy
	symErrStr
	symErrCode
)

const cgoEnabled = true

// TurboJPEG flags: stop on warnings (a truncated stream would decode with
// its missing part grey) and limit progressive scans (a denial-of-service
// guard).
const decodeFlags = 8192 | 32768

// symNames are the symbols resolved at open, in the sym* order.
var symNames = []string{"tjInitDecompress", "tjDecompressHeader3", "tjDecompress2", "tjDestroy", "tjGetErrorStr2", "tjGetErrorCode"}

type impl struct {
	lib  dynlib.Guard // read-held by calls, write-held by close
	path string
	idle chan unsafe.Pointer
}

func (l *Lib) open(path string) error {
	// Every symbol but tjGetErrorCode (used when present) is required.
	p, err := l.lib.Load(path, symNames, symErrCode)
	if errors.Is(err, dynlib.ErrMissingSymbol) {
		return fmt.Errorf("%w: %v (TurboJPEG 2.0 or newer is needed)", ErrUnavailable, err)
	}
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	l.path = p
	l.idle = make(chan unsafe.Pointer, idleHandles)
	return nil
}

func (l *Lib) close() error {
	err := l.lib.Close(func() {
		for drained := false; !drained; {
			select {
			case h := <-l.idle:
				C.tj_destroy(l.lib.Sym(symDestroy), h)
			default:
				drained = true
			}
		}
	})
	if err != nil {
		return fmt.Errorf("turbojpeg: dlclose %s: %v", l.path, err)
	}
	return nil
}

// get borrows a decompressor handle; the caller holds l.mu for reading.
func (l *Lib) get() (unsafe.Pointer, error) {
	if !l.lib.Loaded() {
		return nil, fmt.Errorf("turbojpeg: library used after Close")
	}
	select {
	case h := <-l.idle:
		return h, nil
	default:
	}
	h := C.tj_init(l.lib.Sym(symInit))
	if h == nil {
		return nil, fmt.Errorf("turbojpeg: tjInitDecompress failed (out of memory?)")
	}
	return h, nil
}

// put returns a handle to the pool, or destroys it when the pool is full.
func (l *Lib) put(h unsafe.Pointer) {
	select {
	case l.idle <- h:
	default:
		C.tj_destroy(l.lib.Sym(symDestroy), h)
	}
}

// lastError is the handle's last error as a *DecodeError.
func (l *Lib) lastError(h unsafe.Pointer) error {
	var msg [512]C.char
	code := C.tj_error(l.lib.Sym(symErrStr), l.lib.Sym(symErrCode), h, &msg[0], C.size_t(len(msg)))
	return &DecodeError{Msg: C.GoString(&msg[0]), Warning: code == 0}
}

func (l *Lib) header(b []byte) (Header, error) {
	l.lib.RLock()
	defer l.lib.RUnlock()
	h, err := l.get()
	if err != nil {
		return Header{}, err
	}
	defer l.put(h)
	var w, ht, sub, cs C.int
	if C.tj_header(l.lib.Sym(symHeader), h, (*C.uchar)(unsafe.Pointer(&b[0])), C.size_t(len(b)), &w, &ht, &sub, &cs) != 0 {
		return Header{}, l.lastError(h)
	}
	return Header{Width: int(w), Height: int(ht), Colorspace: Colorspace(cs)}, nil
}

func (l *Lib) decode(b []byte, f Format, dst []byte, w, ht int) error {
	l.lib.RLock()
	defer l.lib.RUnlock()
	h, err := l.get()
	if err != nil {
		return err
	}
	defer l.put(h)
	pitch := w * f.BytesPerPixel()
	if C.tj_decompress(l.lib.Sym(symDecompress), h, (*C.uchar)(unsafe.Pointer(&b[0])), C.size_t(len(b)),
		(*C.uchar)(unsafe.Pointer(&dst[0])), C.int(w), C.int(pitch), C.int(ht), C.int(f), decodeFlags) != 0 {
		return l.lastError(h)
	}
	return nil
}
