package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestLoadtestNoRedirects (issue 12, item 12): a 307 from the target is
// the answer, not followed (the other address receives nothing), and the
// client connects to loopback addresses only.
func TestLoadtestNoRedirects(t *testing.T) {
	var elsewhere atomic.Int64
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		elsewhere.Add(1)
	}))
	defer other.Close()
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/v1/models/m/predict", http.StatusTemporaryRedirect)
	}))
	defer target.Close()
	hc := loadtestClient(5*time.Second, 2)
	s, err := newPredictSender(hc, target.URL+"/v1/models/m/predict", "", [][]byte{[]byte("x")}, 1, 5)
	if err != nil {
		t.Fatal(err)
	}
	if o := s.send(context.Background()); o.code != "307" || o.ok {
		t.Errorf("outcome %+v, want the 307 itself", o)
	}
	if n := elsewhere.Load(); n != 0 {
		t.Errorf("the redirect target received %d requests", n)
	}
	// 192.0.2.1 (TEST-NET-1) is refused by the dialer before any packet.
	req, _ := http.NewRequest(http.MethodPost, "http://192.0.2.1:9/v1/models/m/predict", bytes.NewReader(nil))
	if _, err := hc.Do(req); err == nil || !strings.Contains(err.Error(), "not a loopback address") {
		t.Errorf("non-loopback dial: %v", err)
	}
}
