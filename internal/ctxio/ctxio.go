// Package ctxio stops long copies when their context ends: a Reader and a
// Writer that fail every call after ctx is done with ctx's error, so an
// io.Copy of a large download or a streamed checkpoint returns at the next
// read or write instead of running to the end.
package ctxio

import (
	"context"
	"io"
)

// Reader reads from r until ctx is done, then fails with ctx.Err().
func Reader(ctx context.Context, r io.Reader) io.Reader { return readFunc(guard(ctx, r.Read)) }

// Writer writes to w until ctx is done, then fails with ctx.Err() without
// writing.
func Writer(ctx context.Context, w io.Writer) io.Writer { return writeFunc(guard(ctx, w.Write)) }

// guard is op failing with ctx.Err(), without calling op, once ctx is done.
func guard(ctx context.Context, op func([]byte) (int, error)) func([]byte) (int, error) {
	return func(b []byte) (int, error) {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		return op(b)
	}
}

type readFunc func([]byte) (int, error)

func (f readFunc) Read(b []byte) (int, error) { return f(b) }

type writeFunc func([]byte) (int, error)

func (f writeFunc) Write(b []byte) (int, error) { return f(b) }
