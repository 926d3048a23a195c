// Package digest hashes files the way bitrun identifies them (models,
// checkpoints, cache entries): lowercase hex SHA-256, read in 1 MiB blocks,
// given up when the context ends, with optional progress.
package digest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
)

// SHA256 reads r to its end and returns the hex SHA-256 of what it read and
// how many bytes that was. It checks ctx before every read and returns its
// error once ctx is done. progress, when not nil, is called after every read
// with the bytes read so far and total (the caller's expected size, passed
// through).
func SHA256(ctx context.Context, r io.Reader, total int64, progress func(done, total int64)) (string, int64, error) {
	h := sha256.New()
	buf := make([]byte, 1<<20)
	var done int64
	for {
		if err := ctx.Err(); err != nil {
			return "", done, err
		}
		n, err := r.Read(buf)
		h.Write(buf[:n])
		done += int64(n)
		if progress != nil && n > 0 {
			progress(done, total)
		}
		if err == io.EOF {
			return hex.EncodeToString(h.Sum(nil)), done, nil
		}
		if err != nil {
			return "", done, err
		}
	}
}
