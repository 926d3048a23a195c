package serve_test

// Acceptance tests against ONNX Runtime on a real exported BiT model (the
// "tiny" config, 10 classes, exported at 64×64). They fail instead of
// skipping when BITRUN_REQUIRE_ORT=1 and ONNX Runtime is missing.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/bitrun/bitrun/api"
	"github.com/bitrun/bitrun/client"
	"github.com/bitrun/bitrun/data"
	"github.com/bitrun/bitrun/export"
	"github.com/bitrun/bitrun/internal/servetest"
	"github.com/bitrun/bitrun/runtime"
	"github.com/bitrun/bitrun/serve"

	"github.com/bitrun/bitrun/internal/ort/onnxtest"
	"github.com/bitrun/bitrun/internal/testmodel"
)

const ortRes = 64

var ortLabels = []string{"zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"}

func requireORT(t testing.TB) {
	t.Helper()
	_, err := runtime.Version(runtime.Options{})
	onnxtest.Require(t, err)
}

// exportTiny writes the tiny BiT (random trunk from model.Init, random
// non-zero head) as ONNX at 64×64 with labels.
func exportTiny(t testing.TB) string {
	t.Helper()
	requireORT(t)
	cfg, params, err := testmodel.Tiny(len(ortLabels), 11, 1)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "tiny.onnx")
	if _, err := export.Export(context.Background(), path, cfg, params, export.Options{Resolution: ortRes, Labels: ortLabels}); err != nil {
		t.Fatal(err)
	}
	return path
}

// testImages returns n distinct JPEGs of various sizes (smooth random
// gradients plus noise, so the tiny model's answers differ).
func testImages(t testing.TB, n int) [][]byte {
	rng := rand.New(rand.NewPCG(5, 5))
	out := make([][]byte, n)
	for i := range out {
		w, h := 40+rng.IntN(80), 40+rng.IntN(80)
		m := image.NewRGBA(image.Rect(0, 0, w, h))
		a, b, c := rng.Float64(), rng.Float64(), rng.Float64()
		for y := range h {
			for x := range w {
				f := func(k float64) uint8 {
					return uint8(math.Mod(255*(k*float64(x)/float64(w)+(1-k)*float64(y)/float64(h))+20*rng.NormFloat64()+512, 256))
				}
				m.Set(x, y, color.RGBA{f(a), f(b), f(c), 255})
			}
		}
		var buf bytes.Buffer
		if err := jpeg.Encode(&buf, m, &jpeg.Options{Quality: 90}); err != nil {
			t.Fatal(err)
		}
		out[i] = buf.Bytes()
	}
	return out
}

// reference classifies one image without the serve package: data decode and
// preprocessing, a batch of one through runtime, softmax and ranking written
// out here.
func reference(t testing.TB, p *runtime.Predictor, img []byte, k int) []client.Prediction {
	t.Helper()
	m, err := data.DecodeBytes(img, data.DefaultMaxPixels)
	if err != nil {
		t.Fatal(err)
	}
	x := make([]float32, 3*ortRes*ortRes)
	data.EvalTensor(m, ortRes, 3, data.BiTNorm, x)
	outs, err := p.Run(context.Background(), x, []int64{1, 3, ortRes, ortRes})
	if err != nil {
		t.Fatal(err)
	}
	logits := outs["logits"].Data
	idx := refRanking(logits)
	var sum float64
	mx := float64(logits[idx[0]])
	for _, v := range logits {
		sum += math.Exp(float64(v) - mx)
	}
	var preds []client.Prediction
	for _, i := range idx[:k] {
		preds = append(preds, client.Prediction{Label: ortLabels[i], Index: i, Score: math.Exp(float64(logits[i])-mx) / sum})
	}
	return preds
}

func startORT(t testing.TB, path string, cfg serve.Config, opts serve.Options) (*serve.Server, *client.Client, string) {
	t.Helper()
	c, err := serve.Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := servetest.NewServer(t, cfg, c)
	ts := servetest.HTTP(t, srv)
	return srv, servetest.Client(t, ts.URL, 64), ts.URL
}

// TestORTPredictMatchesReference: images sent concurrently (so that they are
// batched together) get the same top-k as a batch of one run directly.
func TestORTPredictMatchesReference(t *testing.T) {
	path := exportTiny(t)
	_, cl, _ := startORT(t, path, serve.Config{}, serve.Options{MaxBatch: 8, BatchDelay: 20e6})
	ref, err := runtime.Open(path, runtime.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	imgs := testImages(t, 12)
	got := make([]*client.PredictResponse, len(imgs))
	var wg sync.WaitGroup
	for i, img := range imgs {
		wg.Go(func() {
			var err error
			if got[i], err = cl.Predict(context.Background(), "tiny", img, 3); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	distinct := map[int]bool{}
	for i, img := range imgs {
		want := reference(t, ref, img, 3)
		g := got[i].Predictions
		if len(g) != 3 {
			t.Fatalf("image %d: %d predictions", i, len(g))
		}
		for j := range want {
			if g[j].Index != want[j].Index || g[j].Label != want[j].Label || math.Abs(g[j].Score-want[j].Score) > 1e-6 {
				t.Errorf("image %d rank %d: got %+v, want %+v", i, j, g[j], want[j])
			}
		}
		distinct[g[0].Index] = true
	}
	if len(distinct) < 2 {
		t.Errorf("every image got class %v: the test model does not discriminate", distinct)
	}

	md, err := cl.Metadata(context.Background(), "tiny")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	sum := sha256.Sum256(b)
	if md.SHA256 != hex.EncodeToString(sum[:]) || md.File != "tiny.onnx" || md.Classes != 10 || md.Labels[3] != "three" ||
		md.Preprocessing.Resolution != ortRes || fmt.Sprint(md.Inputs[0].Shape) != "[-1 3 64 64]" || md.Inputs[0].Name != export.InputImage {
		t.Errorf("metadata %+v", md)
	}
}

// TestORTInferMatchesPredict: the KServe tensor endpoint on the preprocessed
// image gives the same logits as the raw-image endpoint ranks.
func TestORTInfer(t *testing.T) {
	path := exportTiny(t)
	_, cl, base := startORT(t, path, serve.Config{}, serve.Options{})
	img := testImages(t, 1)[0]
	m, _ := data.DecodeBytes(img, 0)
	x := make([]float32, 3*ortRes*ortRes)
	data.EvalTensor(m, ortRes, 3, data.BiTNorm, x)
	ir, err := cl.Infer(context.Background(), "tiny", &client.InferRequest{
		Inputs: []client.Tensor{api.FP32("image", []int64{1, 3, ortRes, ortRes}, x)}, Outputs: []client.RequestedOutput{{Name: "logits"}}})
	if err != nil {
		t.Fatal(err)
	}
	pr, err := cl.Predict(context.Background(), "tiny", img, 1)
	if err != nil {
		t.Fatal(err)
	}
	var logits []float32
	if o := ir.Output("logits"); o != nil {
		logits, _ = o.Float32s()
	}
	if len(logits) != 10 || slices.Index(logits, slices.Max(logits)) != pr.Predictions[0].Index {
		t.Fatalf("infer %+v vs predict %+v", ir, pr.Predictions)
	}
	// Wrong shape and dtype are 400s from the real model too.
	for _, body := range []string{
		`{"inputs":[{"name":"image","shape":[1,3,32,32],"datatype":"FP32","data":[0]}]}`,
		`{"inputs":[{"name":"image","shape":[1,3,64,64],"datatype":"FP16","data":[0]}]}`,
	} {
		resp, err := http.Post(base+"/v2/models/tiny/infer", "application/json", bytes.NewReader([]byte(body)))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 400 {
			t.Errorf("%s: %d", body, resp.StatusCode)
		}
	}
}

// TestORTLoad is the bounded load test: 32 concurrent clients, 2000
// requests (256 under -short): no 5xx, no lost answer, batches larger than
// one in /metrics.
func TestORTLoad(t *testing.T) {
	path := exportTiny(t)
	_, cl, base := startORT(t, path, serve.Config{}, serve.Options{MaxBatch: 16})
	total, conc := 2000, 32
	if testing.Short() {
		total = 256
	}
	imgs := testImages(t, 8)
	codes := make(map[int]int)
	var mu sync.Mutex
	var wg sync.WaitGroup
	next := make(chan int, total)
	for i := range total {
		next <- i
	}
	close(next)
	for range conc {
		wg.Go(func() {
			for i := range next {
				_, err := cl.Predict(context.Background(), "tiny", imgs[i%len(imgs)], 5)
				code := 200
				if err != nil {
					code = client.StatusCode(err)
					if code == 0 {
						t.Errorf("request %d lost: %v", i, err)
					}
				}
				mu.Lock()
				codes[code]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if codes[200] != total {
		t.Fatalf("status codes %v, want %d×200", codes, total)
	}
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	buf.ReadFrom(resp.Body)
	metric := func(name string) float64 {
		m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`).FindStringSubmatch(buf.String())
		if m == nil {
			t.Fatalf("no %s in /metrics", name)
		}
		v, _ := strconv.ParseFloat(m[1], 64)
		return v
	}
	images, batches := metric(`bitrun_batch_size_sum{model="tiny",version="1"}`), metric(`bitrun_batch_size_count{model="tiny",version="1"}`)
	if int(images) != total {
		t.Errorf("model saw %v images, want %d", images, total)
	}
	if !(batches < images) {
		t.Errorf("%v batches for %v images: no batching", batches, images)
	}
	if le1 := metric(`bitrun_batch_size_bucket{model="tiny",version="1",le="1"}`); le1 == batches {
		t.Errorf("every batch had one image")
	}
	t.Logf("%d requests, %v batches, mean batch %.1f", total, batches, images/batches)
}
