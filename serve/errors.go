package serve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/bitrun/bitrun/api"
	"github.com/bitrun/bitrun/data"
	"github.com/bitrun/bitrun/runtime"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Errors a caller (or the HTTP layer) branches on. Every error returned by
// this package wraps at most one of them; statusFor maps them to HTTP codes.
var (
	// ErrBadRequest is wrapped by errors about malformed requests.
	ErrBadRequest = errors.New("serve: bad request")
	// ErrEmptyBody is wrapped when a predict request carries no image bytes.
	ErrEmptyBody = errors.New("serve: empty request body")
	// ErrUnsupportedMedia is wrapped when the Content-Type is not an image,
	// multipart/form-data or application/octet-stream (predict) or JSON (infer).
	ErrUnsupportedMedia = errors.New("serve: unsupported media type")
	// ErrBodyTooLarge is wrapped when a request body exceeds Config.MaxBody.
	ErrBodyTooLarge = errors.New("serve: request body too large")
	// ErrTooManyPixels is wrapped when an image header claims more pixels than
	// Config.MaxPixels (checked before decoding).
	ErrTooManyPixels = errors.New("serve: image too large")
	// ErrTooManyImages is wrapped when a request carries more images than
	// Config.MaxImages.
	ErrTooManyImages = errors.New("serve: too many images in one request")
	// ErrModelNotFound is wrapped when a request names a model the server does not serve.
	ErrModelNotFound = errors.New("serve: model not found")
	// ErrVersionNotFound is wrapped when a request names a version of a
	// served model that is not served.
	ErrVersionNotFound = errors.New("serve: model version not found")
	// ErrRepository is wrapped when a model repository request names a
	// model that cannot be loaded from it (no such folder, a path leaving
	// the repository, a version folder without a model file, a bad config
	// or a model that fails to load); the versions served before stay.
	ErrRepository = errors.New("serve: model repository")
	// ErrNotFound is wrapped for unknown routes.
	ErrNotFound = errors.New("serve: not found")
	// ErrMethodNotAllowed is wrapped when a route exists but not for the method.
	ErrMethodNotAllowed = errors.New("serve: method not allowed")
	// ErrUnauthorized is wrapped when a bearer token is required and missing or wrong.
	ErrUnauthorized = errors.New("serve: unauthorized")
	// ErrQueueFull is wrapped when a model's batching queue is full; retry later.
	ErrQueueFull = errors.New("serve: queue full")
	// ErrNotReady is wrapped when a model is not loaded and warmed yet, or the
	// server is shutting down.
	ErrNotReady = errors.New("serve: not ready")
	// ErrClosed is wrapped when a Classifier is used after Close.
	ErrClosed = errors.New("serve: classifier closed")
	// ErrBodyTimeout is wrapped when a request body does not arrive within
	// Config.BodyTimeout.
	ErrBodyTimeout = errors.New("serve: request body timeout")
	// ErrNonFinite is wrapped when a model output holds NaN or Inf, which
	// the JSON answer cannot carry.
	ErrNonFinite = errors.New("serve: non-finite model output")
)

// statusClientClosed is logged (never seen by the client) when the client
// went away before the answer was ready (nginx's convention).
const statusClientClosed = 499

// retryAfterSeconds is the Retry-After value sent with 503 responses.
const retryAfterSeconds = 1

// errorClasses is the one table of how errors reach callers: the HTTP status
// (statusFor) and the gRPC code (codeFor) of each condition, checked in
// order. Limits a request passes are 413 over HTTP and ResourceExhausted
// over gRPC, a full queue 503 and ResourceExhausted, a model not loaded, not
// warmed or shutting down 503 and Unavailable (retry), malformed requests
// 400 and InvalidArgument. An error matching none is a 500 and Internal.
var errorClasses = []struct {
	errs   []error
	status int
	code   codes.Code
}{
	{[]error{ErrUnauthorized}, http.StatusUnauthorized, codes.Unauthenticated},
	{[]error{ErrModelNotFound, ErrVersionNotFound, ErrNotFound}, http.StatusNotFound, codes.NotFound},
	{[]error{ErrMethodNotAllowed}, http.StatusMethodNotAllowed, codes.Unimplemented},
	{[]error{errMaxBytes, ErrBodyTooLarge, ErrTooManyPixels, ErrTooManyImages}, http.StatusRequestEntityTooLarge, codes.ResourceExhausted},
	{[]error{ErrUnsupportedMedia}, http.StatusUnsupportedMediaType, codes.InvalidArgument},
	{[]error{ErrBodyTimeout}, http.StatusRequestTimeout, codes.DeadlineExceeded},
	{[]error{ErrNonFinite}, http.StatusInternalServerError, codes.Internal},
	{[]error{ErrBadRequest, ErrEmptyBody, api.ErrMalformed, ErrRepository, data.ErrBadImage, runtime.ErrBadInput},
		http.StatusBadRequest, codes.InvalidArgument},
	{[]error{ErrQueueFull}, http.StatusServiceUnavailable, codes.ResourceExhausted},
	{[]error{ErrNotReady, ErrClosed}, http.StatusServiceUnavailable, codes.Unavailable},
	{[]error{context.DeadlineExceeded}, http.StatusGatewayTimeout, codes.DeadlineExceeded},
	{[]error{context.Canceled}, statusClientClosed, codes.Canceled},
}

// errMaxBytes stands in errorClasses for an *http.MaxBytesError (the body
// limit of http.MaxBytesReader), which is matched by type.
var errMaxBytes = errors.New("serve: http.MaxBytesError")

// classify is the index of err's entry in errorClasses, -1 for none.
func classify(err error) int {
	var maxBytes *http.MaxBytesError
	for i, c := range errorClasses {
		for _, e := range c.errs {
			if errors.Is(err, e) || e == errMaxBytes && errors.As(err, &maxBytes) {
				return i
			}
		}
	}
	return -1
}

// statusFor is the one place where errors become HTTP status codes.
func statusFor(err error) int {
	if err == nil {
		return http.StatusOK
	}
	if i := classify(err); i >= 0 {
		return errorClasses[i].status
	}
	return http.StatusInternalServerError
}

// codeFor is the one place where errors become gRPC status codes (the
// counterpart of statusFor, from the same table); an error that already is
// a gRPC status (from grpc itself) keeps its code.
func codeFor(err error) codes.Code {
	if err == nil {
		return codes.OK
	}
	if st, ok := status.FromError(err); ok && st.Code() != codes.Unknown {
		return st.Code()
	}
	if i := classify(err); i >= 0 {
		return errorClasses[i].code
	}
	return codes.Internal
}

// errorBody is the JSON body of every error response.
type errorBody = api.Error

// writeError writes err as a JSON error with the status statusFor gives and
// returns that status.
func writeError(w http.ResponseWriter, err error) int {
	code := statusFor(err)
	msg := err.Error()
	switch code {
	case http.StatusUnauthorized:
		w.Header().Set("WWW-Authenticate", `Bearer realm="bitrun"`)
	case http.StatusServiceUnavailable:
		w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds))
	case http.StatusGatewayTimeout:
		msg = fmt.Sprintf("serve: inference deadline exceeded: %v", err)
	case statusClientClosed:
		// Nobody is listening; the code only reaches logs and metrics.
		return code
	}
	writeJSON(w, code, errorBody{Error: msg})
	return code
}

// writeJSON writes v as the JSON response body with the given status. v is
// encoded before the status is written: when it cannot be, the answer is a
// 500 with a JSON error instead.
func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		code = http.StatusInternalServerError
		b, _ = json.Marshal(errorBody{Error: fmt.Sprintf("serve: encoding the answer: %v", err)})
	}
	writeBody(w, code, append(b, '\n'))
}

// writeBody writes an encoded JSON body with the given status.
func writeBody(w http.ResponseWriter, code int, b []byte) {
	writeTyped(w, code, "application/json", b)
}

// writeTyped writes a body of the given Content-Type and status.
func writeTyped(w http.ResponseWriter, code int, contentType string, b []byte) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(code)
	_, _ = w.Write(b) // the client may have gone; nothing to do about it
}
