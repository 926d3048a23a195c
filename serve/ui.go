package serve

import (
	_ "embed"
	"net/http"
)

// page is the try-it web page served at GET /: it lists the models with
// their metadata, classifies a dropped or chosen image through the predict
// route and shows the top 5 as bars with the latency. It is self-contained
// (no external assets) and sends the bearer token typed into it.
//
//go:embed ui/index.html
var page []byte

// openAPIDoc is the OpenAPI 3 description of every route, served at
// GET /openapi.json.
//
//go:embed openapi.json
var openAPIDoc []byte

func (s *Server) page(_ *reqCtx, w http.ResponseWriter, _ *http.Request) error {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' blob: data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'; frame-ancestors 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cache-Control", "no-cache")
	writeTyped(w, http.StatusOK, "text/html; charset=utf-8", page)
	return nil
}

func (s *Server) openAPI(_ *reqCtx, w http.ResponseWriter, _ *http.Request) error {
	writeTyped(w, http.StatusOK, "application/json", openAPIDoc)
	return nil
}
