package eval

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"math"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"testing"

	"github.com/bitrun/bitrun/data"
	"github.com/bitrun/bitrun/internal/ort/onnxtest"
	"github.com/bitrun/bitrun/internal/testimg"
	"github.com/bitrun/bitrun/runtime"
)

func TestMetrics(t *testing.T) {
	// 3 classes, k=2. Rows: scores for 5 examples.
	logits := []float32{
		0.9, 0.05, 0.05, // label 0: top-1 right
		0.5, 0.4, 0.1, // label 1: top-1 wrong (pred 0), top-2 right
		0.3, 0.1, 0.6, // label 1: wrong at top-2 too (pred 2)
		0.2, 0.2, 0.6, // label 2: right
		0.3, 0.3, 0.3, // label 2: all tied: pred 0, rank 2 -> wrong at top-2
	}
	labels := []int{0, 1, 1, 2, 2}
	m := NewMetrics(2)
	if err := m.Add(logits, 3, labels); err != nil {
		t.Fatal(err)
	}
	if m.N() != 5 || m.Top1() != 2.0/5 || m.TopK() != 3.0/5 {
		t.Errorf("n %d top1 %v top2 %v, want 5 0.4 0.6", m.N(), m.Top1(), m.TopK())
	}
	want := [][]int64{{1, 0, 0}, {1, 0, 1}, {1, 0, 1}}
	if got := m.Confusion(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("confusion %v, want %v", got, want)
	}
	pc := m.PerClass([]string{"a", "b", "c"})
	if pc[0].Accuracy != 1 || pc[1].Accuracy != 0 || pc[2].Accuracy != 0.5 || pc[2].Count != 2 || pc[1].Label != "b" {
		t.Errorf("per class %+v", pc)
	}
	// A label the model cannot predict is wrong and grows the matrix.
	if err := m.Add([]float32{5, 1, 0}, 3, []int{4}); err != nil {
		t.Fatal(err)
	}
	if c := m.Confusion(); len(c) != 5 || c[4][0] != 1 || m.Top1() != 2.0/6 {
		t.Errorf("after unpredictable label: confusion %v top1 %v", c, m.Top1())
	}
	if math.IsNaN(float64(m.PerClass(nil)[3].Accuracy)) == false {
		t.Errorf("empty class accuracy should be NaN")
	}
	for _, bad := range []struct {
		logits  []float32
		classes int
		labels  []int
	}{
		{[]float32{1, 2}, 3, []int{0}},
		{[]float32{1, 2, 3}, 3, []int{-1}},
		{nil, 0, nil},
		{make([]float32, MaxClasses+1), MaxClasses + 1, []int{0}},
	} {
		if err := m.Add(bad.logits, bad.classes, bad.labels); err == nil {
			t.Errorf("Add(%d logits, %d, %v) accepted", len(bad.logits), bad.classes, bad.labels)
		}
	}
}

func TestRatioJSON(t *testing.T) {
	b, err := json.Marshal([]Ratio{0.25, Ratio(math.NaN())})
	if err != nil || string(b) != "[0.25,null]" {
		t.Fatalf("marshal: %s %v", b, err)
	}
	var back []Ratio
	if err := json.Unmarshal(b, &back); err != nil || back[0] != 0.25 || !math.IsNaN(float64(back[1])) {
		t.Fatalf("unmarshal: %v %v", back, err)
	}
}

func TestResolvePreprocess(t *testing.T) {
	meta := map[string]string{MetaResolution: "64", MetaMean: "0.5,0.5,0.5", MetaStd: "[0.25, 0.5, 1]"}
	cases := []struct {
		name    string
		shape   []int64
		md      map[string]string
		o       Overrides
		size    int
		ch      int
		std2    float32
		wantErr string
	}{
		{"metadata", []int64{-1, 3, -1, -1}, meta, Overrides{}, 64, 3, 1, ""},
		{"fixed shape beats metadata", []int64{-1, 3, 32, 32}, meta, Overrides{}, 32, 3, 1, ""},
		{"override beats metadata", []int64{-1, 3, -1, -1}, meta, Overrides{Size: 96, Mean: []float32{0}, Std: []float32{1}}, 96, 3, 1, ""},
		{"dynamic channels from override", []int64{-1, -1, -1, -1}, meta, Overrides{Channels: 1}, 64, 1, 1, ""},
		{"dynamic channels unknown", []int64{-1, -1, 8, 8}, meta, Overrides{}, 0, 0, 0, "--channels"},
		{"size unknown", []int64{-1, 3, -1, -1}, nil, Overrides{Mean: []float32{0.5}, Std: []float32{0.5}}, 0, 0, 0, "--resolution"},
		{"norm unknown", []int64{-1, 3, 8, 8}, nil, Overrides{}, 0, 0, 0, "--mean"},
		{"conflict size", []int64{-1, 3, 8, 8}, meta, Overrides{Size: 16}, 0, 0, 0, "fixed at 8"},
		{"conflict channels", []int64{-1, 3, 8, 8}, meta, Overrides{Channels: 1}, 0, 0, 0, "3 channels"},
		{"non-square", []int64{-1, 3, 8, 9}, meta, Overrides{}, 0, 0, 0, "square"},
		{"rank", []int64{-1, 3, 8}, meta, Overrides{}, 0, 0, 0, "NCHW"},
		{"bad metadata", []int64{-1, 3, -1, -1}, map[string]string{MetaResolution: "big"}, Overrides{}, 0, 0, 0, "bitrun.resolution"},
		{"zero std", []int64{-1, 3, 4, 4}, nil, Overrides{Mean: []float32{0}, Std: []float32{0}}, 0, 0, 0, "positive"},
		{"two means", []int64{-1, 3, 4, 4}, nil, Overrides{Mean: []float32{0, 1}, Std: []float32{1}}, 0, 0, 0, "1 or 3"},
		{"5 channels", []int64{-1, 5, 4, 4}, meta, Overrides{}, 0, 0, 0, "only 1 or 3"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ResolvePreprocess(tc.shape, tc.md, tc.o)
			if tc.wantErr != "" {
				if !errors.Is(err, ErrPreprocess) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want ErrPreprocess mentioning %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.Size != tc.size || p.Channels != tc.ch || p.Norm.Std[2] != tc.std2 || len(p.Mean) != tc.ch {
				t.Errorf("got %+v, want size %d channels %d std[2] %v", p, tc.size, tc.ch, tc.std2)
			}
		})
	}
}

func TestParseLabels(t *testing.T) {
	for in, want := range map[string]string{
		`["a","b c"]`: "[a b c]",
		"a\r\nb c\n":  "[a b c]",
		"":            "[]",
	} {
		got, err := ParseLabels(in)
		if err != nil || fmt.Sprint(got) != want {
			t.Errorf("ParseLabels(%q) = %v, %v; want %s", in, got, err, want)
		}
	}
	if _, err := ParseLabels(`["a",`); err == nil {
		t.Error("broken JSON accepted")
	}
}

// colourSet is a synthetic dataset: example i has class i%3 and is a solid
// image of primary colour i%3, except every 7th, which shows colour (i+1)%3.
type colourSet struct{ n int }

func (d colourSet) Len() int          { return d.n }
func (d colourSet) Classes() []string { return []string{"red", "green", "blue"} }
func (d colourSet) Label(i int) int   { return i % 3 }
func (d colourSet) shown(i int) int {
	if i%7 == 0 {
		return (i + 1) % 3
	}
	return i % 3
}
func (d colourSet) Image(i int) (image.Image, error) {
	if i < 0 || i >= d.n {
		return nil, fmt.Errorf("index %d out of range", i)
	}
	img := image.NewRGBA(image.Rect(0, 0, 5, 7))
	c := color.RGBA{A: 255}
	switch d.shown(i) {
	case 0:
		c.R = 200
	case 1:
		c.G = 200
	case 2:
		c.B = 200
	}
	for p := range img.Pix {
		img.Pix[p] = [4]uint8{c.R, c.G, c.B, c.A}[p%4]
	}
	return img, nil
}

// expected computes accuracy and confusion of the perfect colour classifier.
func (d colourSet) expected(limit int) (top1 float64, conf [][]int64) {
	conf = [][]int64{make([]int64, 3), make([]int64, 3), make([]int64, 3)}
	right := 0
	for i := range limit {
		conf[d.Label(i)][d.shown(i)]++
		if d.shown(i) == d.Label(i) {
			right++
		}
	}
	return float64(right) / float64(limit), conf
}

// colourClassifier scores each class by its channel mean (pure Go).
type colourClassifier struct{ size int }

func (c colourClassifier) Preprocess() Preprocess {
	p := Preprocess{Size: c.size, Channels: 3}
	p.setNorm(data.BiTNorm)
	return p
}
func (c colourClassifier) Labels() []string { return nil }
func (c colourClassifier) Name() string     { return "colour" }
func (c colourClassifier) Logits(_ context.Context, x []float32, n int) ([]float32, int, error) {
	hw := c.size * c.size
	out := make([]float32, n*3)
	for i := range n {
		for ch := range 3 {
			var s float32
			for _, v := range x[(i*3+ch)*hw : (i*3+ch+1)*hw] {
				s += v
			}
			out[i*3+ch] = s / float32(hw)
		}
	}
	return out, 3, nil
}

func TestRunPipeline(t *testing.T) {
	ds := colourSet{n: 103}
	for _, tc := range []struct{ batch, limit int }{{32, 0}, {1, 10}, {7, 50}, {200, 0}} {
		var calls []int
		r, err := Run(context.Background(), colourClassifier{size: 6}, ds, Options{Batch: tc.batch, Limit: tc.limit,
			Progress: func(done, total int) { calls = append(calls, done) }})
		if err != nil {
			t.Fatal(err)
		}
		n := ds.n
		if tc.limit > 0 {
			n = tc.limit
		}
		top1, conf := ds.expected(n)
		if r.Images != int64(n) || math.Abs(float64(r.Top1)-top1) > 1e-12 || fmt.Sprint(r.Confusion) != fmt.Sprint(conf) {
			t.Errorf("batch %d limit %d: images %d top1 %v confusion %v; want %d %v %v", tc.batch, tc.limit, r.Images, r.Top1, r.Confusion, n, top1, conf)
		}
		if r.K != 3 || r.TopK != 1 {
			t.Errorf("top-k: k %d acc %v, want 3 and 1", r.K, r.TopK)
		}
		if len(calls) == 0 || calls[len(calls)-1] != n {
			t.Errorf("progress calls %v, want ending at %d", calls, n)
		}
		if r.Timing.Seconds <= 0 || r.Timing.ImagesPerSec <= 0 || r.Timing.InferenceSeconds > r.Timing.Seconds {
			t.Errorf("timing %+v", r.Timing)
		}
		if r.PerClass[0].Label != "red" {
			t.Errorf("labels not taken from dataset: %+v", r.PerClass[0])
		}
	}
}

func TestRunErrors(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Run(ctx, colourClassifier{size: 4}, colourSet{n: 100}, Options{Batch: 4}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: err = %v", err)
	}
	if _, err := Run(context.Background(), colourClassifier{size: 4}, colourSet{n: 0}, Options{}); err == nil {
		t.Error("empty dataset accepted")
	}
	if _, err := Run(context.Background(), colourClassifier{size: 4}, colourSet{n: 3}, Options{Batch: -1}); err == nil {
		t.Error("negative batch accepted")
	}
	if _, err := Run(context.Background(), colourClassifier{size: 4}, colourSet{n: 3}, Options{K: -1}); err == nil {
		t.Error("negative top-k accepted")
	}
	// A negative limit is no limit (zero = default, negative = off).
	if r, err := Run(context.Background(), colourClassifier{size: 4}, colourSet{n: 7}, Options{Limit: -1}); err != nil || r.Images != 7 {
		t.Errorf("negative limit: %v images, %v; want all 7", r, err)
	}
	// A failing image surfaces as an error naming it.
	if _, err := Run(context.Background(), colourClassifier{size: 4}, brokenSet{colourSet{n: 20}}, Options{Batch: 4}); err == nil || !strings.Contains(err.Error(), "broken") {
		t.Errorf("broken image: err = %v", err)
	}
}

type brokenSet struct{ colourSet }

func (d brokenSet) Image(i int) (image.Image, error) {
	if i == 13 {
		return nil, errors.New("broken image 13")
	}
	return d.colourSet.Image(i)
}

func TestWriters(t *testing.T) {
	r, err := Run(context.Background(), colourClassifier{size: 4}, colourSet{n: 60}, Options{Batch: 8})
	if err != nil {
		t.Fatal(err)
	}
	var text bytes.Buffer
	if err := WriteText(&text, r); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"top-1:", "top-3:", "per-class accuracy", "confusion matrix", "green", "images/s"} {
		if !strings.Contains(text.String(), s) {
			t.Errorf("text report lacks %q:\n%s", s, text.String())
		}
	}
	var js bytes.Buffer
	if err := WriteJSON(&js, r); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatalf("JSON round trip: %v\n%s", err, js.String())
	}
	if back.Top1 != r.Top1 || fmt.Sprint(back.Confusion) != fmt.Sprint(r.Confusion) || back.Images != 60 {
		t.Errorf("JSON round trip changed the report")
	}

	path := filepath.Join(t.TempDir(), "confusion.png")
	if err := WriteConfusionPNG(path, r); err != nil {
		t.Fatal(err)
	}
	img := testimg.ReadPNG(t, path)
	// Find the darkest and lightest cell centres on the grid: the diagonal
	// (mostly right) must be darker than an off-diagonal cell with no examples.
	lum := func(x, y int) uint32 { r, g, b, _ := img.At(x, y).RGBA(); return r + g + b }
	l := confusionLayout(3, make([]string, 2), r.Labels) // WriteConfusionPNG's two title lines
	cell, ox, oy := l.cell, l.ox, l.oy
	diag := lum(ox+cell/2-12, oy+cell/2-12)       // cell (0,0), away from the count text
	off := lum(ox+2*cell+cell/2-12, oy+cell/2-12) // cell (0,2): class 0 never shows colour 2
	if !(diag < off) {
		t.Errorf("diagonal cell luminance %d not darker than empty cell %d", diag, off)
	}
	if b := img.Bounds(); b.Dx() < 3*cell || b.Dy() < 3*cell {
		t.Errorf("image %v too small", b)
	}
}

func TestConfusionImageLarge(t *testing.T) {
	for _, n := range []int{25, 100, 1000} {
		conf := make([][]int64, n)
		for i := range conf {
			conf[i] = make([]int64, n)
			conf[i][i] = 3
		}
		img := ConfusionImage(conf, "t")
		if b := img.Bounds(); b.Dx() > 1400 || b.Dy() > 1400 || b.Dx() < n {
			t.Errorf("%d classes: image %v", n, b)
		}
	}
}

// requireORT skips (or fails under BITRUN_REQUIRE_ORT=1) without ONNX Runtime.
func requireORT(t testing.TB) {
	t.Helper()
	_, err := runtime.Version(runtime.Options{})
	onnxtest.Require(t, err)
}

func TestONNXClassifier(t *testing.T) {
	requireORT(t)
	// The colour classifier as an ONNX graph: mean per channel times identity.
	c := onnxtest.Classifier{C: 3, K: 3, W: []float32{1, 0, 0, 0, 1, 0, 0, 0, 1}, B: make([]float32, 3),
		Metadata: map[string]string{MetaResolution: "6", MetaMean: "0.5,0.5,0.5", MetaStd: "0.5,0.5,0.5", MetaLabels: `["R","G","B"]`}}
	path, err := c.Model().Write(t.TempDir(), "colour.onnx")
	if err != nil {
		t.Fatal(err)
	}
	p, err := runtime.Open(path, runtime.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	clf, err := NewONNX(p, Overrides{})
	if err != nil {
		t.Fatal(err)
	}
	if pre := clf.Preprocess(); pre.Size != 6 || pre.Channels != 3 {
		t.Errorf("preprocess %+v", pre)
	}
	ds := colourSet{n: 70}
	onnx, err := Run(context.Background(), clf, ds, Options{Batch: 16})
	if err != nil {
		t.Fatal(err)
	}
	native, err := Run(context.Background(), colourClassifier{size: 6}, ds, Options{Batch: 16})
	if err != nil {
		t.Fatal(err)
	}
	if onnx.Top1 != native.Top1 || fmt.Sprint(onnx.Confusion) != fmt.Sprint(native.Confusion) {
		t.Errorf("onnx top1 %v confusion %v; Go %v %v", onnx.Top1, onnx.Confusion, native.Top1, native.Confusion)
	}
	if onnx.Labels[1] != "G" {
		t.Errorf("labels %v, want the model's", onnx.Labels)
	}
	// Without metadata and overrides, the preprocessing is unknown.
	c.Metadata = nil
	path2, _ := c.Model().Write(t.TempDir(), "bare.onnx")
	p2, err := runtime.Open(path2, runtime.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer p2.Close()
	if _, err := NewONNX(p2, Overrides{}); !errors.Is(err, ErrPreprocess) {
		t.Errorf("bare model: err = %v, want ErrPreprocess", err)
	}
	if _, err := NewONNX(p2, Overrides{Size: 6, Mean: []float32{0.5}, Std: []float32{0.5}}); err != nil {
		t.Errorf("bare model with overrides: %v", err)
	}
	// OpenONNX opens and owns the session: the same classifier, closed by
	// Close; a model whose preprocessing is unknown is refused as by NewONNX.
	owned, err := OpenONNX(path, runtime.Options{}, Overrides{})
	if err != nil {
		t.Fatal(err)
	}
	if pre := owned.Preprocess(); pre.Size != 6 || owned.Labels()[1] != "G" {
		t.Errorf("OpenONNX: preprocess %+v, labels %v", pre, owned.Labels())
	}
	if err := owned.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := owned.Logits(context.Background(), make([]float32, 3*6*6), 1); err == nil {
		t.Error("Logits after Close succeeded: the session was not closed")
	}
	if _, err := OpenONNX(path2, runtime.Options{}, Overrides{}); !errors.Is(err, ErrPreprocess) {
		t.Errorf("OpenONNX bare model: err = %v, want ErrPreprocess", err)
	}
	if _, err := OpenONNX(filepath.Join(t.TempDir(), "missing.onnx"), runtime.Options{}, Overrides{}); err == nil {
		t.Error("OpenONNX of a missing file succeeded")
	}
	// NewONNX leaves the predictor to its owner.
	if err := clf.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := clf.Logits(context.Background(), make([]float32, 3*6*6), 1); err != nil {
		t.Errorf("Close of a NewONNX classifier closed the caller's predictor: %v", err)
	}
}

// TestMetricsRefuseNonFinite (issue 12, item 6): NaN or ±Inf logits fail the
// batch with ErrNonFinite and record nothing (was: top-1 0% while the
// per-class table said 100%, NaN ranking first in one and last in the other).
func TestMetricsRefuseNonFinite(t *testing.T) {
	for _, bad := range []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))} {
		m := NewMetrics(1)
		err := m.Add([]float32{0.1, 0.2, 0.7, 0.5, bad, 0.1}, 3, []int{2, 0})
		if !errors.Is(err, ErrNonFinite) || !strings.Contains(err.Error(), "example 1") {
			t.Errorf("%v: err = %v, want ErrNonFinite naming example 1", bad, err)
		}
		if m.N() != 0 || len(m.confusion) != 0 {
			t.Errorf("%v: %d examples, %d confusion rows recorded from a refused batch", bad, m.N(), len(m.confusion))
		}
	}
}

// Merge sums shard reports, and checks a report's confusion matrix whole
// before sizing by it: many empty rows (a small file) are refused, not
// allocated as rows² counters.
func TestMergeBounds(t *testing.T) {
	var parts []*Report
	for i := range 2 {
		r, err := Run(context.Background(), colourClassifier{size: 4}, colourSet{n: 10}, Options{Batch: 4, Shard: Shard{Index: i, Count: 2}})
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, r)
	}
	whole, err := Merge(parts)
	if err != nil || whole.Images != 10 {
		t.Fatalf("merge: %v, %v", whole, err)
	}
	for _, rows := range []int{MaxClasses + 1, 2} {
		bad := *parts[1]
		bad.Confusion = make([][]int64, rows) // empty rows
		if _, err := Merge([]*Report{parts[0], &bad}); !errors.Is(err, ErrShards) {
			t.Errorf("%d empty confusion rows: %v, want ErrShards", rows, err)
		}
	}
}

// npyHead is a version 1.0 .npy header for dtype and shape (no data).
func npyHead(dtype, shape string) []byte {
	dict := fmt.Sprintf("{'descr': '%s', 'fortran_order': False, 'shape': %s, }", dtype, shape)
	pad := 64 - (10+len(dict)+1)%64
	dict += strings.Repeat(" ", pad%64) + "\n"
	h := []byte("\x93NUMPY\x01\x00")
	h = append(h, byte(len(dict)), byte(len(dict)>>8))
	return append(h, dict...)
}

// A features set whose headers declare 2^31-1 rows of no data (16 GiB of
// labels) is refused
// before anything of that size is allocated.
func TestReadFeaturesDeclaredRows(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f.npy")
	fp, lp, np, mp := FeaturePaths(path)
	const rows = 1<<31 - 1
	for p, b := range map[string][]byte{
		fp: npyHead("<f4", fmt.Sprintf("(%d, 0)", rows)),
		lp: npyHead("<i8", fmt.Sprintf("(%d,)", rows)),
		np: []byte("a\n"),
		mp: []byte(fmt.Sprintf(`{"model":"m","output":"features","rows":%d,"dim":0,"classes":["a"]}`, rows)),
	} {
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var before, after goruntime.MemStats
	goruntime.ReadMemStats(&before)
	_, err := ReadFeatures(path)
	goruntime.ReadMemStats(&after)
	if err == nil || !strings.Contains(err.Error(), "labels") {
		t.Fatalf("ReadFeatures of a 2^31-row header: %v, want an error about the labels", err)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 64<<20 {
		t.Errorf("ReadFeatures allocated %d MiB for a header's declared rows", got>>20)
	}
}
