package client_test

import (
	"context"
	"fmt"
	"image/color"
	"log"
	"net/http/httptest"

	"github.com/bitrun/bitrun/client"
	"github.com/bitrun/bitrun/serve"
)

// Classify an image through a bitrun server. (Here the server runs in the
// process with a toy model; normally it is `bitrun serve --onnx m.onnx`.)
func ExampleClient_Predict() {
	m, err := serve.New(meanRunner{res: 4}, serve.Options{Name: "colors"})
	if err != nil {
		log.Fatal(err)
	}
	srv, err := serve.NewServer(serve.Config{}, m)
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()

	c, err := client.New(ts.URL)
	if err != nil {
		log.Fatal(err)
	}
	resp, err := c.Predict(context.Background(), "colors", pngOf(color.RGBA{R: 30, G: 40, B: 230, A: 255}), 3)
	if err != nil {
		log.Fatal(err)
	}
	for _, p := range resp.Predictions {
		fmt.Printf("%-5s %d %.2f\n", p.Label, p.Index, p.Score)
	}
	// Output:
	// blue  2 0.70
	// green 1 0.16
	// red   0 0.15
}
