package serve

import (
	"bytes"
	"errors"
	"flag"
	"image"
	"image/gif"
	"image/jpeg"
	"image/png"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"testing"

	"github.com/bitrun/bitrun/data"
	"github.com/bitrun/bitrun/runtime"
)

// Limits the fuzz targets check: small, so that violations are cheap to find.
var fuzzLimits = uploadLimits{maxBody: 1 << 20, maxPixels: 1 << 16, maxImages: 3}

// makeSeeds encodes a tiny image as PNG, JPEG and GIF: the fuzz seeds kept
// in testdata/ (regenerate with go test -run TestFuzzSeeds -update).
func makeSeeds() map[string][]byte {
	m := image.NewRGBA(image.Rect(0, 0, 5, 3))
	for i := range m.Pix {
		m.Pix[i] = byte(i * 7)
	}
	out := map[string][]byte{}
	var b bytes.Buffer
	png.Encode(&b, m)
	out["png"] = append([]byte(nil), b.Bytes()...)
	b.Reset()
	jpeg.Encode(&b, m, nil)
	out["jpeg"] = append([]byte(nil), b.Bytes()...)
	b.Reset()
	gif.Encode(&b, m, nil)
	out["gif"] = append([]byte(nil), b.Bytes()...)
	return out
}

// seedImages reads the fuzz seeds from testdata/.
func seedImages(t testing.TB) map[string][]byte {
	out := map[string][]byte{}
	files, _ := filepath.Glob("testdata/seed.*")
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out[strings.TrimPrefix(filepath.Ext(f), ".")] = data
	}
	return out
}

// fuzzPre is the preprocessing the fuzz targets decode rows with.
var fuzzPre = prep{Preprocessing: Preprocessing{Resolution: 8, Channels: 3}, norm: data.BiTNorm}

// checkUpload asserts the properties every decodeUpload result must have:
// a 4xx error with the package prefix, or 1..maxImages rows of the model's
// size with every value inside BiT's [-1, 1] input range.
func checkUpload(t *testing.T, ups []upload[[]float32], err error) {
	if err != nil {
		code := statusFor(err)
		if code < 400 || code >= 500 {
			t.Fatalf("error %v maps to %d, want a 4xx", err, code)
		}
		if !strings.HasPrefix(err.Error(), "serve: ") && !strings.HasPrefix(err.Error(), "file ") {
			t.Fatalf("error %q lacks the package prefix", err)
		}
		return
	}
	if len(ups) < 1 || len(ups) > fuzzLimits.maxImages {
		t.Fatalf("%d images, limits 1..%d", len(ups), fuzzLimits.maxImages)
	}
	for _, u := range ups {
		if len(u.val) != fuzzPre.Size() {
			t.Fatalf("row of %d values, want %d", len(u.val), fuzzPre.Size())
		}
		for i, v := range u.val {
			if !(v >= -1.0001 && v <= 1.0001) {
				t.Fatalf("row value %d = %v, outside [-1, 1]", i, v)
			}
		}
	}
}

func decodeForFuzz(b []byte) ([]float32, error) { return decodeRow(b, fuzzLimits.maxPixels, fuzzPre) }

// FuzzDecodeUpload feeds arbitrary bodies and Content-Types to the upload
// decoder (raw and multipart): it must never panic, never exceed the limits,
// and fail only with 4xx errors.
func FuzzDecodeUpload(f *testing.F) {
	for name, img := range seedImages(f) {
		f.Add("image/"+name, img)
		f.Add("application/octet-stream", img[:len(img)/2])
		var b bytes.Buffer
		mw := multipart.NewWriter(&b)
		mw.SetBoundary("fuzzboundary")
		w, _ := mw.CreateFormFile("file", name)
		w.Write(img)
		w, _ = mw.CreateFormFile("file", "second")
		w.Write(img)
		mw.Close()
		f.Add(mw.FormDataContentType(), b.Bytes())
	}
	f.Add("image/png", []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\xc3P\x00\x00\xc3P\x08\x02\x00\x00\x00"))
	f.Add("text/plain", []byte("hello"))
	f.Add("", []byte{})
	f.Add("multipart/form-data; boundary=x", []byte("--x\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nGIF89a\r\n--x--\r\n"))
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		ups, err := decodeUpload(contentType, body, fuzzLimits, decodeForFuzz)
		checkUpload(t, ups, err)
		// The same read as readBody reads it, through http.MaxBytesReader
		// with a cap below the body: the read fails with a 4xx.
		if len(body) > 1 {
			rec := &discardWriter{}
			capped := http.MaxBytesReader(rec, readCloser{bytes.NewReader(body)}, int64(len(body)/2))
			b, release, err := readCapped(capped, int64(len(body)/2), -1, nil)
			if err == nil {
				release()
				t.Fatalf("a %d-byte body read under a cap of %d: %d bytes", len(body), len(body)/2, len(b))
			}
			checkUpload(t, nil, err)
		}
	})
}

// FuzzParseNumbers feeds arbitrary JSON to the KServe tensor data parser.
func FuzzParseNumbers(f *testing.F) {
	f.Add([]byte(`[1, 2.5, -3e2]`), 3)
	f.Add([]byte(`[[[1],[2]],[[3],[4]]]`), 4)
	f.Add([]byte(`[1,,2]`), 2)
	f.Add([]byte(`[1] [2]`), 2)
	f.Add([]byte(`["a"]`), 1)
	f.Fuzz(func(t *testing.T, raw []byte, want int) {
		if want < 0 || want > 1<<16 {
			return
		}
		v, err := parseNumbers(raw, want)
		if err == nil && len(v) != want {
			t.Fatalf("%d values without error, want %d", len(v), want)
		}
	})
}

type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header {
	if d.h == nil {
		d.h = http.Header{}
	}
	return d.h
}
func (d *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d *discardWriter) WriteHeader(int)             {}

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }

func TestStatusFor(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want int
	}{
		{ErrQueueFull, 503}, {ErrNotReady, 503}, {ErrBodyTooLarge, 413}, {&http.MaxBytesError{Limit: 1}, 413},
		{ErrTooManyPixels, 413}, {ErrUnauthorized, 401}, {ErrModelNotFound, 404}, {ErrUnsupportedMedia, 415},
		{errors.New("boom"), 500}, {nil, 200},
	} {
		if got := statusFor(tc.err); got != tc.want {
			t.Errorf("statusFor(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
}

func TestParseNumbers(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
		ok   bool
	}{
		{`[1,2,3]`, 3, true}, {` [ [1, 2] , [3 ,4] ] `, 4, true}, {`[1e-3, -2E+2]`, 2, true},
		{`[1,2]`, 3, false}, {`[1,2,3,4]`, 3, false}, {`[1,,2]`, 2, false}, {`[1 2]`, 2, false},
		{`[[1],[2]`, 2, false}, {`[1]]`, 1, false}, {`1`, 1, false}, {`[true]`, 1, false},
		{`[1] 2`, 1, false}, {`[--1]`, 1, false}, {`[[[[[[[[[1]]]]]]]]]`, 1, false},
	} {
		_, err := parseNumbers([]byte(tc.in), tc.want)
		if (err == nil) != tc.ok {
			t.Errorf("parseNumbers(%s, %d): err %v, want ok=%v", tc.in, tc.want, err, tc.ok)
		}
	}
}

// A shape that declares far more values than the JSON text holds (an
// 84-byte UINT8 request for 16 images of 40M pixels) is refused before
// anything of the declared size is allocated.
func TestParseNumbersDeclaredSize(t *testing.T) {
	var before, after goruntime.MemStats
	goruntime.ReadMemStats(&before)
	_, err := parseNumbers([]byte(`[1]`), 16*6000*6666*3)
	goruntime.ReadMemStats(&after)
	if err == nil || !strings.Contains(err.Error(), "1 values; the shape needs") {
		t.Errorf("err %v, want the count found and needed", err)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 1<<20 {
		t.Errorf("allocated %d bytes for a 3-byte array", grew)
	}
}

func TestModelPreprocessing(t *testing.T) {
	for _, tc := range []struct {
		shape []int64
		meta  map[string]string
		ok    bool
		res   int
		ch    int
	}{
		{[]int64{-1, 3, -1, -1}, map[string]string{MetaResolution: "64"}, true, 64, 3},
		{[]int64{-1, 1, 28, 28}, nil, true, 28, 1},
		{[]int64{-1, 3, -1, -1}, nil, false, 0, 0},
		{[]int64{-1, 3, 32, 32}, map[string]string{MetaResolution: "64"}, false, 0, 0},
		{[]int64{-1, 3, 32, 16}, nil, false, 0, 0},
		{[]int64{-1, 4, 32, 32}, nil, false, 0, 0},
		{[]int64{-1, 3, 32}, nil, false, 0, 0},
		{[]int64{-1, 3, 32, 32}, map[string]string{MetaStd: "0,1,1"}, false, 0, 0},
		{[]int64{-1, 3, 32, 32}, map[string]string{MetaMean: "[0.485, 0.456, 0.406]", MetaStd: "0.229,0.224,0.225"}, true, 32, 3},
		{[]int64{-1, 3, 32, 32}, map[string]string{MetaMean: "1,2"}, false, 0, 0},
	} {
		p, err := modelPreprocessing(runtimeInfo(tc.shape, tc.meta))
		if (err == nil) != tc.ok || err == nil && (p.Resolution != tc.res || p.Channels != tc.ch) {
			t.Errorf("shape %v meta %v: %+v, %v", tc.shape, tc.meta, p, err)
		}
	}
}

func TestModelLabels(t *testing.T) {
	if l, err := modelLabels(map[string]string{MetaLabels: "cat\ndog\n"}, 2); err != nil || len(l) != 2 || l[1] != "dog" {
		t.Errorf("lines: %v %v", l, err)
	}
	if l, err := modelLabels(map[string]string{MetaLabels: `["a","b,c"]`}, 2); err != nil || l[1] != "b,c" {
		t.Errorf("json: %v %v", l, err)
	}
	if _, err := modelLabels(map[string]string{MetaLabels: `["a"]`}, 2); err == nil {
		t.Error("count mismatch accepted")
	}
}

func TestDecodeRowErrors(t *testing.T) {
	if _, err := decodeRow(nil, 10, fuzzPre); !errors.Is(err, ErrEmptyBody) {
		t.Errorf("empty: %v", err)
	}
	// The pixel cap comes from data's header check, reported as 413 naming
	// the setting.
	png := seedImages(t)["png"]
	_, err := decodeRow(png, 14, fuzzPre)
	if !errors.Is(err, ErrTooManyPixels) || statusFor(err) != 413 || !strings.Contains(err.Error(), "5x3 = 15 pixels, over the max-pixels limit of 14") {
		t.Errorf("over the cap: %v", err)
	}
	if _, err := decodeRow(png, 15, fuzzPre); err != nil {
		t.Errorf("at the cap: %v", err)
	}
}

func runtimeInfo(shape []int64, meta map[string]string) runtime.Info {
	return runtime.Info{Input: "image", Shape: shape, Outputs: []string{"logits"}, Metadata: meta}
}

var updateSeeds = flag.Bool("update", false, "rewrite testdata/seed.* (the fuzz seeds)")

// TestFuzzSeeds checks the fuzz seeds in testdata/ decode within the fuzz
// limits; with -update it regenerates them from makeSeeds.
func TestFuzzSeeds(t *testing.T) {
	if *updateSeeds {
		for name, b := range makeSeeds() {
			if err := os.WriteFile(filepath.Join("testdata", "seed."+name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	files, _ := filepath.Glob("testdata/seed.*")
	if len(files) < 3 {
		t.Fatalf("fuzz seeds missing in testdata/ (found %v); run go test -run TestFuzzSeeds -update", files)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		ups, err := decodeUpload("", b, fuzzLimits, decodeForFuzz)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		checkUpload(t, ups, err)
	}
}
