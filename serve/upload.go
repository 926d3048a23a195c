package serve

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strings"
	"sync"
)

// uploadLimits bound what one predict request may cost.
type uploadLimits struct {
	maxBody   int64 // bytes of the whole body
	maxPixels int   // per image, checked before decoding
	maxImages int   // images per request
}

// upload is one decoded image of a predict request: val is what the decode
// function made of its bytes (the model's input row in the server).
type upload[T any] struct {
	name string // multipart file name, "" for a raw body
	val  T
}

// decodeUpload reads the images of a predict request: the whole body when
// its Content-Type is image/* or application/octet-stream (or absent), or
// every part named "file" of a multipart/form-data body. body must already
// be capped (http.MaxBytesReader); reading past the cap fails with
// ErrBodyTooLarge. decode is called for each image's bytes, which it must not
// keep: their buffer is reused. sizeHint (the Content-Length, or -1) sizes
// the read buffer of a raw body.
func decodeUpload[T any](contentType string, body io.Reader, sizeHint int64, lim uploadLimits, decode func([]byte) (T, error)) ([]upload[T], error) {
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
		b, release, err := readCapped(body, lim.maxBody, sizeHint)
		if err != nil {
			return nil, err
		}
		defer release()
		v, err := decode(b)
		if err != nil {
			return nil, err
		}
		return []upload[T]{{val: v}}, nil
	case mediaType == "multipart/form-data":
		return decodeMultipart(body, params["boundary"], lim, decode)
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
		b, release, err := readCapped(part, lim.maxBody, -1)
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
// ErrBodyTooLarge past max bytes; sizeHint (-1: unknown) presizes the
// buffer. release returns the buffer: the bytes must not be used after it.
func readCapped(r io.Reader, max, sizeHint int64) (b []byte, release func(), err error) {
	buf := bodyPool.Get().(*bytes.Buffer)
	buf.Reset()
	release = func() {
		if buf.Cap() <= maxPooledBody {
			bodyPool.Put(buf)
		}
	}
	if sizeHint > 0 && sizeHint <= max {
		buf.Grow(int(sizeHint) + bytes.MinRead)
	}
	if _, err := buf.ReadFrom(io.LimitReader(r, max+1)); err != nil {
		release()
		return nil, nil, bodyError("request body", err)
	}
	if int64(buf.Len()) > max {
		release()
		return nil, nil, tooLarge(max)
	}
	return buf.Bytes(), release, nil
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
