package serve_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/color"
	"log"
	"net/http"
	"net/http/httptest"
	"os"

	"github.com/bitrun/bitrun/serve"
)

// A Go program classifies images with an embedded, goroutine-safe
// Classifier. Open loads an ONNX file, here a small model scoring the mean
// of each colour channel; New wraps a Runner already loaded.
func ExampleClassifier_Classify() {
	dir, err := os.MkdirTemp("", "colors")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path, err := writeColorModel(dir, 8)
	if err != nil {
		log.Fatal(err)
	}
	c, err := serve.Open(path, serve.Options{Name: "colors", TopK: 2})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	preds, err := c.Classify(context.Background(), solid(32, 20, color.RGBA{R: 250, G: 40, B: 10, A: 255}))
	if err != nil {
		log.Fatal(err)
	}
	for _, p := range preds {
		fmt.Printf("%s (class %d) %.3f\n", p.Label, p.Index, p.Score)
	}
	// Output:
	// red (class 0) 0.744
	// green (class 1) 0.143
}

// The Server's handler mounts under a Go web backend's own mux.
func ExampleServer_Handler() {
	dir, err := os.MkdirTemp("", "colors")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	r, err := openColorRunner(dir, 8)
	if err != nil {
		log.Fatal(err)
	}
	c, err := serve.New(r, serve.Options{Name: "colors"})
	if err != nil {
		log.Fatal(err)
	}
	srv, err := serve.NewServer(serve.Config{}, c)
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	mux := http.NewServeMux()
	mux.Handle("/ml/", http.StripPrefix("/ml", srv.Handler()))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "home") })
	web := httptest.NewServer(mux)
	defer web.Close()

	img := pngBytes(solid(16, 16, color.RGBA{B: 255, A: 255}))
	resp, err := http.Post(web.URL+"/ml/v1/models/colors/predict?top_k=1", "image/png", bytes.NewReader(img))
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	var out serve.PredictResponse
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		log.Fatal(err)
	}
	fmt.Println(resp.StatusCode, out.Model, out.Predictions[0].Label)
	// Output:
	// 200 colors blue
}

// Serving an exported ONNX model (needs ONNX Runtime, so not run here).
func ExampleOpen() {
	c, err := serve.Open("model.onnx", serve.Options{MaxBatch: 16})
	if err != nil {
		log.Fatal(err)
	}
	srv, err := serve.NewServer(serve.Config{Addr: "127.0.0.1:8080"}, c)
	if err != nil {
		log.Fatal(err)
	}
	log.Fatal(srv.ListenAndServe())
}
