//go:build cgo

package dynlib

/*
#cgo linux LDFLAGS: -ldl
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

// dlerror() is per thread, so each helper calls it in the same C call as the
// operation it reports on.
static void dl_copy(char *out, size_t outlen, const char *msg, const char *fallback) {
	if (outlen == 0) return;
	if (msg == NULL) msg = fallback;
	strncpy(out, msg, outlen - 1);
	out[outlen - 1] = 0;
}

static void *dl_open(const char *path, char *err, size_t errlen) {
	dlerror();
	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (h == NULL) dl_copy(err, errlen, dlerror(), "unknown dlopen error");
	return h;
}

static int dl_close(void *h, char *err, size_t errlen) {
	dlerror();
	if (dlclose(h) != 0) {
		dl_copy(err, errlen, dlerror(), "unknown dlclose error");
		return -1;
	}
	return 0;
}

static int dl_where(void *sym, char *out, size_t outlen) {
	Dl_info info;
	if (dladdr(sym, &info) == 0 || info.dli_fname == NULL) return -1;
	dl_copy(out, outlen, info.dli_fname, "");
	return 0;
}
*/
import "C"

import (
	"errors"
	"fmt"
	"sync"
	"unsafe"
)

// Lib is a library loaded with dlopen and the symbols resolved from it.
type Lib struct {
	handle unsafe.Pointer
	syms   []unsafe.Pointer
	path   string
}

// Open loads the library at path (a file path or a name for the dynamic
// linker's search path) and resolves names, in order. The first required
// names must resolve: if one does not, the library is closed again and the
// error wraps ErrMissingSymbol; an optional symbol the library lacks is nil
// in Syms. Otherwise the error is dlopen's message.
func Open(path string, names []string, required int) (*Lib, error) {
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	var errBuf [512]C.char
	h := C.dl_open(cpath, &errBuf[0], C.size_t(len(errBuf)))
	if h == nil {
		return nil, errors.New(C.GoString(&errBuf[0]))
	}
	l := &Lib{handle: h, syms: make([]unsafe.Pointer, len(names)), path: path}
	for i, name := range names {
		cname := C.CString(name)
		l.syms[i] = C.dlsym(h, cname)
		C.free(unsafe.Pointer(cname))
	}
	for i, name := range names[:required] {
		if l.syms[i] == nil {
			err := fmt.Errorf("%s has no %s: %w", path, name, ErrMissingSymbol)
			if cerr := l.Close(); cerr != nil {
				err = fmt.Errorf("%w (and dlclose failed: %v)", err, cerr)
			}
			return nil, err
		}
	}
	for _, s := range l.syms {
		if s == nil {
			continue
		}
		var where [4096]C.char
		if C.dl_where(s, &where[0], C.size_t(len(where))) == 0 {
			l.path = C.GoString(&where[0])
		}
		break
	}
	return l, nil
}

// Syms returns the resolved symbols in the order Open was given their names.
func (l *Lib) Syms() []unsafe.Pointer { return l.syms }

// Path is the file the library was loaded from, as the dynamic linker reports
// it for the first resolved symbol, or the path Open was given.
func (l *Lib) Path() string { return l.path }

// Close unloads the library; its symbols must not be called afterwards.
func (l *Lib) Close() error {
	var errBuf [512]C.char
	if C.dl_close(l.handle, &errBuf[0], C.size_t(len(errBuf))) != 0 {
		return errors.New(C.GoString(&errBuf[0]))
	}
	return nil
}

// Guard is how a boundary package holds its loaded library. Calls hold the
// read lock (RLock) while they use a symbol; Close takes the write lock, so
// it waits for running calls, and leaves every symbol nil, so a later call
// finds nil and refuses.
type Guard struct {
	sync.RWMutex
	lib  *Lib
	syms []unsafe.Pointer
}

// Load opens the library at path as Open does and returns the file it was
// loaded from (Lib.Path).
func (g *Guard) Load(path string, names []string, required int) (string, error) {
	l, err := Open(path, names, required)
	if err != nil {
		return "", err
	}
	g.lib, g.syms = l, l.Syms()
	return l.Path(), nil
}

// Sym is the i-th symbol Load was asked for: nil when the library lacks it,
// was never loaded or is closed.
func (g *Guard) Sym(i int) unsafe.Pointer {
	if i >= len(g.syms) {
		return nil
	}
	return g.syms[i]
}

// Loaded reports whether the library is loaded and not closed.
func (g *Guard) Loaded() bool { return g.lib != nil }

// Close runs release (the package's own clean-up while the symbols are still
// valid; may be nil) and unloads the library, under the write lock. Closing
// a closed or never loaded Guard does nothing.
func (g *Guard) Close(release func()) error {
	g.Lock()
	defer g.Unlock()
	if g.lib == nil {
		return nil
	}
	if release != nil {
		release()
	}
	l := g.lib
	g.lib = nil
	clear(g.syms)
	return l.Close()
}
