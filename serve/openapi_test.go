package serve

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

// TestOpenAPIMatchesRoutes: every route the server answers is in the
// committed openapi.json with its methods, and every path and method there
// is answered by its own route (not the catch-all, not a 405).
func TestOpenAPIMatchesRoutes(t *testing.T) {
	var doc struct {
		OpenAPI string                    `json:"openapi"`
		Paths   map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(openAPIDoc, &doc); err != nil || !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi.json: %v (version %q)", err, doc.OpenAPI)
	}
	var logs bytes.Buffer
	s, err := NewServer(Config{Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	served := map[string][]string{}
	for _, rt := range s.routeTable() {
		if rt.methods == nil {
			continue // the catch-all
		}
		path := strings.TrimSuffix(rt.pattern, "{$}")
		for _, m := range rt.methods {
			served[path] = append(served[path], strings.ToLower(m))
		}
	}
	for path, methods := range served {
		for _, m := range methods {
			if _, ok := doc.Paths[path][m]; !ok {
				t.Errorf("route %s %s is not in openapi.json", strings.ToUpper(m), path)
			}
		}
	}
	for path, ops := range doc.Paths {
		for m := range ops {
			if !slices.Contains(served[path], m) {
				t.Errorf("openapi.json has %s %s; the server has no such route", strings.ToUpper(m), path)
				continue
			}
			// Ask the server itself: the request must reach this route.
			url := strings.NewReplacer("{name}", "m", "{version}", "1").Replace(path)
			logs.Reset()
			rec := httptest.NewRecorder()
			s.ServeHTTP(rec, httptest.NewRequest(strings.ToUpper(m), url, nil))
			var line struct {
				Route string `json:"route"`
			}
			if err := json.Unmarshal(logs.Bytes(), &line); err != nil || line.Route == "unmatched" || rec.Code == http.StatusMethodNotAllowed {
				t.Errorf("%s %s: answered by route %q with %d (%v)", strings.ToUpper(m), url, line.Route, rec.Code, err)
			}
		}
	}
	if len(doc.Paths) != len(served) {
		t.Errorf("openapi.json has %d paths, the server %d", len(doc.Paths), len(served))
	}
}
