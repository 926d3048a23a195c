package serve

import (
	"errors"
	"fmt"
	"image"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strings"
)

// uploadLimits bound what one predict request may cost.
type uploadLimits struct {
	maxBody   int64 // bytes of the whole body
	maxPixels int   // per image, checked before decoding
	maxImages int   // images per request
}

// upload is one decoded image of a predict request.
type upload struct {
	name string // multipart file name, "" for a raw body
	img  image.Image
}

// decodeUpload reads the images of a predict request: the whole body when
// its Content-Type is image/* or application/octet-stream (or absent), or
// every part named "file" of a multipart/form-data body. body must already
// be capped (http.MaxBytesReader); reading past the cap fails with
// ErrBodyTooLarge. decode is called for each image's bytes.
func decodeUpload(contentType string, body io.Reader, lim uploadLimits, decode func([]byte) (image.Image, error)) ([]upload, error) {
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
		b, err := readCapped(body, lim.maxBody)
		if err != nil {
			return nil, err
		}
		img, err := decode(b)
		if err != nil {
			return nil, err
		}
		return []upload{{img: img}}, nil
	case mediaType == "multipart/form-data":
		return decodeMultipart(body, params["boundary"], lim, decode)
	}
	return nil, fmt.Errorf("%w: %q; send the image as image/* or application/octet-stream, or as multipart/form-data with a \"file\" part",
		ErrUnsupportedMedia, mediaType)
}

func decodeMultipart(body io.Reader, boundary string, lim uploadLimits, decode func([]byte) (image.Image, error)) ([]upload, error) {
	if boundary == "" {
		return nil, fmt.Errorf("%w: multipart/form-data without a boundary", ErrBadRequest)
	}
	mr := multipart.NewReader(body, boundary)
	var ups []upload
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
		b, err := readCapped(part, lim.maxBody)
		if err != nil {
			return nil, err
		}
		img, err := decode(b)
		if err != nil {
			if name := part.FileName(); name != "" {
				return nil, fmt.Errorf("file %q: %w", name, err)
			}
			return nil, err
		}
		ups = append(ups, upload{name: part.FileName(), img: img})
	}
	if len(ups) == 0 {
		return nil, fmt.Errorf("%w: multipart body has no part named \"file\"", ErrBadRequest)
	}
	return ups, nil
}

// readCapped reads r to the end, failing with ErrBodyTooLarge past max bytes.
func readCapped(r io.Reader, max int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, bodyError("request body", err)
	}
	if int64(len(b)) > max {
		return nil, tooLarge(max)
	}
	return b, nil
}

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
