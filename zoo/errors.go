package zoo

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors for the conditions callers branch on. Errors returned by this
// package wrap them; test with errors.Is.
var (
	// ErrNotFound: the name is not in the catalog (the message suggests close names).
	ErrNotFound = errors.New("zoo: unknown model")
	// ErrChecksum: a file's SHA-256 differs from the pinned or recorded digest.
	ErrChecksum = errors.New("zoo: checksum mismatch")
	// ErrOffline: the operation needs the network but offline mode is on.
	ErrOffline = errors.New("zoo: offline mode forbids downloads")
	// ErrNotCached: the model has no file in the cache.
	ErrNotCached = errors.New("zoo: not in the cache")
	// ErrCheckpoint: the file is not a BiT checkpoint of the catalog's
	// architecture and class count.
	ErrCheckpoint = errors.New("zoo: file does not match the catalog")
	// ErrName: a model name or reference is malformed.
	ErrName = errors.New("zoo: malformed model name")
	// ErrStalled: no bytes arrived for the stall timeout (retried internally;
	// returned once the attempts are used up).
	ErrStalled = errors.New("zoo: download stalled")
	// ErrUnsafeCache is wrapped when a cache file (a download in progress,
	// a cached file) is a symbolic link or another non-regular file: the
	// cache never follows links when it writes, renames or reads its files.
	ErrUnsafeCache = errors.New("zoo: cache file is not a regular file")
)

// NotFoundError reports an unknown model name with the closest catalog names.
type NotFoundError struct {
	Name        string
	Suggestions []string
}

func (e *NotFoundError) Error() string {
	msg := fmt.Sprintf("zoo: unknown model %q", e.Name)
	if len(e.Suggestions) > 0 {
		msg += " (did you mean " + strings.Join(e.Suggestions, ", ") + "?)"
	} else {
		msg += " (see `bitrun zoo list`)"
	}
	return msg
}

// Unwrap makes errors.Is(err, ErrNotFound) hold.
func (e *NotFoundError) Unwrap() error { return ErrNotFound }

// ChecksumError reports a SHA-256 mismatch. Source says where the wanted
// digest came from ("catalog", "--sha256", "bitrun.lock.json").
type ChecksumError struct {
	Name   string
	File   string
	Want   string
	Got    string
	Source string
}

func (e *ChecksumError) Error() string {
	msg := fmt.Sprintf("zoo: checksum mismatch for %s (%s): want %s, got %s", e.Name, e.File, e.Want, e.Got)
	if e.Source != "" {
		msg += " (want from " + e.Source + ")"
	}
	return msg
}

// Unwrap makes errors.Is(err, ErrChecksum) hold.
func (e *ChecksumError) Unwrap() error { return ErrChecksum }

// HTTPError is an unexpected HTTP status from the download server.
type HTTPError struct {
	URL        string
	StatusCode int
	Status     string // e.g. "404 Not Found"
	Attempts   int    // attempts made when the error was returned
}

func (e *HTTPError) Error() string {
	msg := fmt.Sprintf("zoo: GET %s: server answered %s", e.URL, e.Status)
	if e.StatusCode == 404 {
		msg += " (no such file on the server; check the base URL / mirror)"
	}
	if e.Attempts > 1 {
		msg += fmt.Sprintf(" after %d attempts", e.Attempts)
	}
	return msg
}

// retriable tells whether a request with this status may succeed if repeated.
func (e *HTTPError) retriable() bool {
	return e.StatusCode >= 500 || e.StatusCode == 408 || e.StatusCode == 429
}
