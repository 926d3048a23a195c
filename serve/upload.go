package serve

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
)

// uploadLimits bound what one predict request may cost.
type uploadLimits struct {
	maxBody   int64       // bytes of the whole body
	maxPixels int         // per image, checked before decoding
	maxImages int         // images per request
	budget    *bodyBudget // charged for the bytes read; nil: unbounded
}

// upload is one decoded image of a predict request: val is what the decode
// function made of its bytes (the model's input row in the server).
type upload[T any] struct {
	name string // multipart file name, "" for a raw body
	val  T
}

// decodeUpload reads the images of a predict request from its body (read
// and capped by readBody): the whole body when its Content-Type is image/*
// or application/octet-stream (or absent), decoded where it lies, or every
// part named "file" of a multipart/form-data body, each copied out (charged
// to lim.budget) and decoded. decode is called for each image's bytes,
// which it must not keep.
func decodeUpload[T any](contentType string, body []byte, lim uploadLimits, decode func([]byte) (T, error)) ([]upload[T], error) {
	mediaType, params := "", map[string]string(nil)
	if contentType != "" {
		var err error
		mediaType, params, err = mime.ParseMediaType(contentType)
		if err != nil {
			return nil, fmt.Errorf("%w: Content-Type %q: %w", ErrUnsupportedMedia, contentType, err)
		}
	}
	switch {
	case mediaType == "", mediaType == "application/octet-stream", strings.HasPrefix(mediaType, "image/"):
		if int64(len(body)) > lim.maxBody {
			return nil, tooLarge(lim.maxBody)
		}
		v, err := decode(body)
		if err != nil {
			return nil, err
		}
		return []upload[T]{{val: v}}, nil
	case mediaType == "multipart/form-data":
		return decodeMultipart(bytes.NewReader(body), params["boundary"], lim, decode)
	}
	return nil, fmt.Errorf("%w: %q; send the image as image/* or application/octet-stream, or as multipart/form-data with a \"file\" part",
		ErrUnsupportedMedia, mediaType)
}

func decodeMultipart[T any](body io.Reader, boundary string, lim uploadLimits, decode func([]byte) (T, error)) ([]upload[T], error) {
	if boundary == "" {
		return nil, fmt.Errorf("%w: multipart/form-data without a boundary", ErrBadRequest)
	}
	mr := multipart.NewReader(body, boundary)
	var ups []upload[T]
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, bodyError("multipart body", err)
		}
		if part.FormName() != "file" {
			// Other fields are read past (they count against the body cap).
			if _, err := io.Copy(io.Discard, part); err != nil {
				return nil, bodyError("multipart body", err)
			}
			continue
		}
		if len(ups) == lim.maxImages {
			return nil, fmt.Errorf("%w: more than %d images (the max-images limit)", ErrTooManyImages, lim.maxImages)
		}
		b, release, err := readCapped(part, lim.maxBody, -1, lim.budget)
		if err != nil {
			return nil, err
		}
		v, err := decode(b)
		release()
		if err != nil {
			if name := part.FileName(); name != "" {
				return nil, fmt.Errorf("file %q: %w", name, err)
			}
			return nil, err
		}
		ups = append(ups, upload[T]{name: part.FileName(), val: v})
	}
	if len(ups) == 0 {
		return nil, fmt.Errorf("%w: multipart body has no part named \"file\"", ErrBadRequest)
	}
	return ups, nil
}

// readCapped reads r to the end into a pooled buffer, failing with
// ErrBodyTooLarge past limit bytes; sizeHint (-1: unknown) presizes the
// buffer. release returns the buffer: the bytes must not be used after it.
// budget, when not nil, is charged ahead of every byte read (a slow client
// holds only what it has sent; a buffer reused from the pool is filled
// only as far as the charge goes); when it runs out the read fails with
// ErrQueueFull.
func readCapped(r io.Reader, limit, sizeHint int64, budget *bodyBudget) (b []byte, release func(), err error) {
	buf := bodyPool.Get().(*bytes.Buffer)
	buf.Reset()
	var charged int64
	release = func() {
		budget.give(charged)
		if buf.Cap() <= maxPooledBody {
			bodyPool.Put(buf)
		}
	}
	// grow makes room for n more bytes, charging the budget first.
	grow := func(n int64) error {
		need := int64(buf.Len()) + n
		if need > charged {
			if err := budget.take(need - charged); err != nil {
				return err
			}
			charged = need
		}
		buf.Grow(int(n))
		return nil
	}
	if sizeHint > 0 && sizeHint <= limit {
		if err := grow(sizeHint + bytes.MinRead); err != nil {
			release()
			return nil, nil, err
		}
	}
	lr := io.LimitReader(r, limit+1)
	for {
		if room := charged - int64(buf.Len()); buf.Available() < bytes.MinRead || room < bytes.MinRead {
			chunk := min(max(int64(buf.Len()), 64<<10), 4<<20)
			if err := grow(chunk); err != nil {
				release()
				return nil, nil, err
			}
		}
		// Read no further than charged: a pooled buffer may have room
		// beyond it.
		n, err := lr.Read(buf.AvailableBuffer()[:min(int64(buf.Available()), charged-int64(buf.Len()))])
		buf.Write(buf.AvailableBuffer()[:n])
		if err == io.EOF {
			break
		}
		if err != nil {
			release()
			return nil, nil, bodyError("request body", err)
		}
	}
	if int64(buf.Len()) > limit {
		release()
		return nil, nil, tooLarge(limit)
	}
	return buf.Bytes(), release, nil
}

// bodyBudget bounds the bytes of request bodies (and their parsing copies)
// held in memory by all requests together; nil means unbounded.
type bodyBudget struct {
	limit int64
	used  atomic.Int64
}

// take charges n bytes, or fails with ErrQueueFull when that would pass the
// limit.
func (b *bodyBudget) take(n int64) error {
	if b == nil || n <= 0 {
		return nil
	}
	if b.used.Add(n) > b.limit {
		b.used.Add(-n)
		return fmt.Errorf("%w: request bodies in memory would pass %s (max-body-memory)", ErrQueueFull, formatBytes(b.limit))
	}
	return nil
}

func (b *bodyBudget) give(n int64) {
	if b != nil && n > 0 {
		b.used.Add(-n)
	}
}

// bodyPool recycles request body buffers up to maxPooledBody bytes.
var bodyPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

const maxPooledBody = 4 << 20

// bodyError classifies an error met while reading the body.
func bodyError(what string, err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return tooLarge(mbe.Limit)
	}
	if errors.Is(err, ErrBodyTooLarge) {
		return err
	}
	return fmt.Errorf("%w: reading %s: %w", ErrBadRequest, what, err)
}

func tooLarge(max int64) error {
	return fmt.Errorf("%w: over the max-body limit of %s", ErrBodyTooLarge, formatBytes(max))
}

// formatBytes writes n in the largest binary unit that divides it.
func formatBytes(n int64) string {
	for _, u := range []struct {
		size int64
		name string
	}{{1 << 30, "GiB"}, {1 << 20, "MiB"}, {1 << 10, "KiB"}} {
		if n >= u.size && n%u.size == 0 {
			return fmt.Sprintf("%d %s", n/u.size, u.name)
		}
	}
	return fmt.Sprintf("%d bytes", n)
}

// waitBudget is a budget of bytes that a taker waits for (until its context
// ends) instead of failing: Config.MaxDecodeMemory.
type waitBudget struct {
	mu    sync.Mutex
	free  int64
	freed chan struct{} // closed (and replaced) whenever bytes come back
}

func newWaitBudget(limit int64) *waitBudget {
	return &waitBudget{free: limit, freed: make(chan struct{})}
}

// take waits until n bytes are free and takes them, or returns ctx's error.
func (b *waitBudget) take(ctx context.Context, n int64) error {
	for {
		b.mu.Lock()
		if b.free >= n {
			b.free -= n
			b.mu.Unlock()
			return nil
		}
		freed := b.freed
		b.mu.Unlock()
		select {
		case <-freed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// give returns n bytes taken before.
func (b *waitBudget) give(n int64) {
	b.mu.Lock()
	b.free += n
	close(b.freed)
	b.freed = make(chan struct{})
	b.mu.Unlock()
}
