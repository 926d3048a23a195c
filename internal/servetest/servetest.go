// Package servetest starts bitrun servers for the tests of serve and of its
// clients (client, cmd/bitrun): a Server over given classifiers, served with
// net/http/httptest, and a client for it, each closed when the test ends. It
// is for tests only.
package servetest

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/bitrun/bitrun/client"
	"github.com/bitrun/bitrun/serve"
)

// NewServer is serve.NewServer failing t on an error.
func NewServer(t testing.TB, cfg serve.Config, cs ...*serve.Classifier) *serve.Server {
	t.Helper()
	srv, err := serve.NewServer(cfg, cs...)
	if err != nil {
		t.Fatal(err)
	}
	return srv
}

// HTTP serves srv's handler over httptest until the test ends, then closes
// the test server and srv; an error from srv.Close fails t.
func HTTP(t testing.TB, srv *serve.Server) *httptest.Server {
	t.Helper()
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		ts.Close()
		if err := srv.Close(); err != nil {
			t.Error(err)
		}
	})
	return ts
}

// Client is a client of the server at base that keeps up to conns idle
// connections, so concurrent requests in a test reuse them.
func Client(t testing.TB, base string, conns int) *client.Client {
	t.Helper()
	cl, err := client.New(base, client.WithHTTPClient(&http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conns}}))
	if err != nil {
		t.Fatal(err)
	}
	return cl
}
