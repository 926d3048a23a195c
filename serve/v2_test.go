package serve_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image/color"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/bitrun/bitrun/api"
	"github.com/bitrun/bitrun/serve"
)

// rgbPixels is an h×w image of one colour as UINT8 HWC pixels.
func rgbPixels(h, w int, c color.RGBA) []byte {
	px := make([]byte, 0, h*w*3)
	for range h * w {
		px = append(px, c.R, c.G, c.B)
	}
	return px
}

// postInfer sends an infer request (binary when a tensor has Raw) and
// decodes the answer.
func postInfer(t *testing.T, url string, req api.InferRequest) (int, *api.InferResponse, string) {
	t.Helper()
	body, n, err := api.EncodeBody(req, req.Inputs)
	if err != nil {
		t.Fatal(err)
	}
	hdr := map[string]string{}
	ct := "application/json"
	if n >= 0 {
		hdr[api.HeaderInferenceContentLength] = strconv.Itoa(n)
		ct = "application/octet-stream"
	}
	resp, b := do(t, "POST", url, ct, body, hdr)
	if resp.StatusCode != 200 {
		return resp.StatusCode, nil, string(b)
	}
	r, err := api.DecodeResponse(b, resp.Header.Get(api.HeaderInferenceContentLength))
	if err != nil {
		t.Fatalf("answer: %v (%q)", err, b)
	}
	return 200, r, ""
}

// TestInferExtensions: binary tensors in and out give the JSON answer's
// values; classification gives "score:index:label" strings; UINT8 pixels
// get the predict preprocessing (same top class as a PNG of the colour).
func TestInferExtensions(t *testing.T) {
	_, _, ts := newTestServer(t, serve.Config{}, serve.Options{})
	url := ts.URL + "/v2/models/colors/infer"
	x := make([]float32, 2*3*8*8)
	for i := range x {
		x[i] = float32(i/64%3) / 4 // channel c of both rows holds c/4
	}
	code, plain, msg := postInfer(t, url, api.InferRequest{Inputs: []api.Tensor{api.FP32("image", []int64{2, 3, 8, 8}, x)}})
	if code != 200 {
		t.Fatal(code, msg)
	}
	want, _ := plain.Output("logits").Float32s()
	code, bin, msg := postInfer(t, url, api.InferRequest{
		Parameters: api.Parameters{api.ParamBinaryDataOutput: true},
		Inputs:     []api.Tensor{api.BinaryFP32("image", []int64{2, 3, 8, 8}, x)}})
	if code != 200 {
		t.Fatal(code, msg)
	}
	o := bin.Output("logits")
	got, err := o.Float32s()
	if err != nil || o.Raw == nil || !slices.Equal(got, want) || bin.ModelVersion != "1" {
		t.Fatalf("binary answer %v raw=%v, JSON %v (%v)", got, o.Raw != nil, want, err)
	}

	// Classification: top 2 of the logits, as JSON and binary strings.
	for _, binary := range []bool{false, true} {
		code, cl, msg := postInfer(t, url, api.InferRequest{Inputs: []api.Tensor{api.FP32("image", []int64{2, 3, 8, 8}, x)},
			Outputs: []api.RequestedOutput{{Name: "logits", Parameters: api.Parameters{api.ParamClassification: 2, api.ParamBinaryData: binary}}}})
		if code != 200 {
			t.Fatal(code, msg)
		}
		s, err := cl.Output("logits").Strings()
		if err != nil || cl.Output("logits").Datatype != "BYTES" || fmt.Sprint(cl.Output("logits").Shape) != "[2 2]" ||
			len(s) != 4 || !strings.HasSuffix(s[0], ":2:blue") || !strings.HasSuffix(s[1], ":1:green") {
			t.Fatalf("binary=%v classification %q %v", binary, s, err)
		}
	}

	// UINT8 pixels, HWC (any size), NCHW and a single [H W C] image.
	red, blue := rgbPixels(5, 7, color.RGBA{R: 250, G: 10, B: 10}), rgbPixels(5, 7, color.RGBA{R: 10, G: 10, B: 240})
	for _, tc := range []struct {
		name string
		in   api.Tensor
		top  []string
	}{
		{"nhwc", api.Uint8("image", []int64{2, 5, 7, 3}, append(slices.Clone(red), blue...), false), []string{"red", "blue"}},
		{"nhwc binary", api.Uint8("image", []int64{2, 5, 7, 3}, append(slices.Clone(blue), red...), true), []string{"blue", "red"}},
		{"hwc", api.Uint8("image", []int64{5, 7, 3}, red, true), []string{"red"}},
	} {
		code, r, msg := postInfer(t, url, api.InferRequest{Inputs: []api.Tensor{tc.in},
			Outputs: []api.RequestedOutput{{Name: "logits", Parameters: api.Parameters{api.ParamClassification: 1}}}})
		if code != 200 {
			t.Fatalf("%s: %d %s", tc.name, code, msg)
		}
		s, _ := r.Output("logits").Strings()
		for i, label := range tc.top {
			if i >= len(s) || !strings.HasSuffix(s[i], ":"+label) {
				t.Errorf("%s: %q, want top %v", tc.name, s, tc.top)
			}
		}
	}
	planar := make([]byte, 0, 3*5*7)
	for _, v := range []byte{10, 240, 10} { // green, channel planes
		planar = append(planar, bytes.Repeat([]byte{v}, 35)...)
	}
	nchw := api.Uint8("image", []int64{1, 3, 5, 7}, planar, true)
	nchw.Parameters[api.ParamLayout] = "NCHW"
	code, r, msg := postInfer(t, url, api.InferRequest{Inputs: []api.Tensor{nchw}, Outputs: []api.RequestedOutput{{Name: "logits", Parameters: api.Parameters{api.ParamClassification: 1}}}})
	if s, _ := r.Output("logits").Strings(); code != 200 || len(s) != 1 || !strings.HasSuffix(s[0], ":1:green") {
		t.Fatalf("NCHW: %d %s %v", code, msg, s)
	}

	// The UINT8 preprocessing is predict's: same logits as a PNG upload.
	_, pb := do(t, "POST", ts.URL+"/v1/models/colors/predict?top_k=3", "image/png", pngBytes(solid(7, 5, color.RGBA{R: 250, G: 10, B: 10, A: 255})), nil)
	var pr api.PredictResponse
	if err := json.Unmarshal(pb, &pr); err != nil || pr.Predictions[0].Label != "red" || pr.Version != "1" {
		t.Fatalf("predict %s", pb)
	}
}

// TestNewRoutesBadInput: every new route answers bad input with a 4xx JSON
// error.
func TestNewRoutesBadInput(t *testing.T) {
	_, _, ts := newTestServer(t, serve.Config{MaxPixels: 10000}, serve.Options{})
	x := make([]float32, 3*8*8)
	good, n, _ := api.EncodeBody(api.InferRequest{Inputs: []api.Tensor{api.BinaryFP32("image", []int64{1, 3, 8, 8}, x)}}, []api.Tensor{api.BinaryFP32("image", nil, x)})
	jsonLen := strconv.Itoa(n)
	withSize := func(size any) []byte {
		h, _ := json.Marshal(api.InferRequest{Inputs: []api.Tensor{{Name: "image", Datatype: "FP32", Shape: []int64{1, 3, 8, 8}, Parameters: api.Parameters{api.ParamBinaryDataSize: size}}}})
		return append(h, make([]byte, 4*len(x))...)
	}
	classify := func(nClasses any) []byte {
		b, _ := json.Marshal(api.InferRequest{Inputs: []api.Tensor{api.FP32("image", []int64{1, 3, 8, 8}, x)},
			Outputs: []api.RequestedOutput{{Name: "logits", Parameters: api.Parameters{api.ParamClassification: nClasses}}}})
		return b
	}
	uint8Body := func(shape []int64, n int, params api.Parameters) []byte {
		in := api.Uint8("image", shape, make([]byte, n), false)
		in.Parameters = params
		b, _ := json.Marshal(api.InferRequest{Inputs: []api.Tensor{in}})
		return b
	}
	sized := func(s any) (map[string]string, []byte) {
		b := withSize(s)
		h, _ := json.Marshal(api.InferRequest{Inputs: []api.Tensor{{Name: "image", Datatype: "FP32", Shape: []int64{1, 3, 8, 8}, Parameters: api.Parameters{api.ParamBinaryDataSize: s}}}})
		return map[string]string{api.HeaderInferenceContentLength: strconv.Itoa(len(h))}, b
	}
	type req struct {
		method, path string
		header       map[string]string
		body         []byte
		code         int
		msg          string
	}
	h := func(v string) map[string]string { return map[string]string{api.HeaderInferenceContentLength: v} }
	cases := []req{
		{"GET", "/v2/models/colors/versions/2", nil, nil, 404, "version 2"},
		{"GET", "/v2/models/colors/versions/abc/ready", nil, nil, 404, "positive integers"},
		{"POST", "/v2/models/colors/versions/7/infer", nil, good, 404, "version 7"},
		{"GET", "/v2/models/colors/versions/0/stats", nil, nil, 404, "version"},
		{"GET", "/v2/models/nope/stats", nil, nil, 404, "nope"},
		{"POST", "/v1/models/colors/versions/3/predict", nil, pngBytes(solid(8, 8, color.White)), 404, "version 3"},
		{"POST", "/v2/models/colors/infer", h("-5"), good, 400, "outside"},
		{"POST", "/v2/models/colors/infer", h("abc"), good, 400, "not a byte count"},
		{"POST", "/v2/models/colors/infer", h(strconv.Itoa(len(good) + 1)), good, 400, "outside"},
		{"POST", "/v2/models/colors/infer", h(jsonLen), good[:len(good)-1], 400, "runs past"},
		{"POST", "/v2/models/colors/infer", h(jsonLen), append(slices.Clone(good), 0), 400, "add up"},
		{"POST", "/v2/models/colors/infer", nil, classify(0), 400, "classification 0"},
		{"POST", "/v2/models/colors/infer", nil, classify(4), 400, "classification 4"},
		{"POST", "/v2/models/colors/infer", nil, classify(-1), 400, "classification -1"},
		{"POST", "/v2/models/colors/infer", nil, classify("x"), 400, "not an integer"},
		{"POST", "/v2/models/colors/infer", nil, uint8Body([]int64{1, 4, 4, 2}, 32, nil), 400, "channels"},
		{"POST", "/v2/models/colors/infer", nil, uint8Body([]int64{1, 4, 4, 3}, 47, nil), 400, "values"},
		{"POST", "/v2/models/colors/infer", nil, uint8Body([]int64{1, 4, 4, 3}, 48, api.Parameters{api.ParamLayout: "HWCN"}), 400, "layout"},
		{"POST", "/v2/models/colors/infer", nil, uint8Body([]int64{1, 200, 200, 3}, 3, nil), 413, "max-pixels"},
		{"POST", "/v2/models/colors/infer", nil, uint8Body([]int64{1, 0, 4, 3}, 0, nil), 400, "empty"},
		{"POST", "/v2/models/colors/infer", nil, []byte(`{"inputs":[{"name":"image","datatype":"UINT8","shape":[1,1,1,3],"data":[1,2,256]}]}`), 400, "0 to 255"},
		{"POST", "/v2/repository/index", nil, []byte(`{"ready":"yes"}`), 400, "JSON"},
		{"GET", "/v2/repository/index?ready=maybe", nil, nil, 400, "ready"},
		{"POST", "/v2/repository/models/colors/load", nil, nil, 400, "no model repository"},
		{"POST", "/v2/repository/models/x/unload", nil, nil, 400, "no model repository"},
		{"POST", "/v2/models/colors/infer", map[string]string{"Content-Type": "text/plain"}, good, 415, "octet-stream"},
	}
	for _, s := range []any{-4, 1 << 20, 3.5} {
		hd, b := sized(s)
		cases = append(cases, req{"POST", "/v2/models/colors/infer", hd, b, 400, "binary_data_size"})
	}
	for _, tc := range cases {
		ct := "application/json"
		if tc.header[api.HeaderInferenceContentLength] != "" {
			ct = "application/octet-stream"
		}
		if v, ok := tc.header["Content-Type"]; ok {
			ct = v
			delete(tc.header, "Content-Type")
		}
		resp, b := do(t, tc.method, ts.URL+tc.path, ct, tc.body, tc.header)
		var e errorJSON
		if resp.StatusCode != tc.code || json.Unmarshal(b, &e) != nil || !strings.Contains(e.Error, tc.msg) {
			t.Errorf("%s %s %v: %d %s, want %d with %q", tc.method, tc.path, tc.header, resp.StatusCode, b, tc.code, tc.msg)
		}
	}
}

// TestVersionRoutesAndStats: versioned and unversioned routes reach the
// same model; /v2 advertises the extensions; statistics count requests,
// images and batches per stage.
func TestVersionRoutesAndStats(t *testing.T) {
	_, _, ts := newTestServer(t, serve.Config{}, serve.Options{Version: "3"})
	var sm api.ServerMetadata
	_, b := do(t, "GET", ts.URL+"/v2", "", nil, nil)
	if json.Unmarshal(b, &sm) != nil || !slices.Contains(sm.Extensions, "binary_tensor_data") || !slices.Contains(sm.Extensions, "classification") {
		t.Fatalf("/v2 %s", b)
	}
	for _, p := range []string{"/v2/models/colors/versions/3", "/v2/models/colors"} {
		var m api.ModelMetadata
		resp, b := do(t, "GET", ts.URL+p, "", nil, nil)
		if resp.StatusCode != 200 || json.Unmarshal(b, &m) != nil || m.Version != "3" || fmt.Sprint(m.Versions) != "[3]" {
			t.Fatalf("%s: %s", p, b)
		}
	}
	if resp, b := do(t, "GET", ts.URL+"/v2/models/colors/versions/3/ready", "", nil, nil); resp.StatusCode != 200 || !strings.Contains(string(b), `"version":"3"`) {
		t.Fatalf("ready %s", b)
	}
	x := make([]float32, 2*3*8*8)
	if code, r, msg := postInfer(t, ts.URL+"/v2/models/colors/versions/3/infer", api.InferRequest{Inputs: []api.Tensor{api.FP32("image", []int64{2, 3, 8, 8}, x)}}); code != 200 || r.ModelVersion != "3" {
		t.Fatal(code, msg)
	}
	if resp, _ := do(t, "POST", ts.URL+"/v1/models/colors/versions/3/predict", "image/png", pngBytes(solid(8, 8, color.White)), nil); resp.StatusCode != 200 {
		t.Fatal(resp.StatusCode)
	}
	do(t, "POST", ts.URL+"/v2/models/colors/infer", "application/json", []byte(`{"inputs":[]}`), nil) // a failure
	for _, p := range []string{"/v2/models/stats", "/v2/models/colors/stats", "/v2/models/colors/versions/3/stats"} {
		var st api.Statistics
		_, b := do(t, "GET", ts.URL+p, "", nil, nil)
		if json.Unmarshal(b, &st) != nil || len(st.ModelStats) != 1 {
			t.Fatalf("%s: %s", p, b)
		}
		s := st.ModelStats[0]
		is := s.InferenceStats
		if s.Name != "colors" || s.Version != "3" || s.InferenceCount != 3 || s.ExecutionCount < 1 || s.LastInference == 0 ||
			is.Success.Count != 2 || is.Success.Ns == 0 || is.Fail.Count != 1 || is.Queue.Count != 3 ||
			is.ComputeInfer.Count != s.ExecutionCount || is.ComputeInfer.Ns == 0 || is.ComputeInput.Count != s.ExecutionCount || is.ComputeOutput.Count != s.ExecutionCount {
			t.Fatalf("%s: %+v", p, s)
		}
	}
	_, b = do(t, "GET", ts.URL+"/metrics", "", nil, nil)
	for _, want := range []string{`bitrun_batch_size_sum{model="colors",version="3"} 3`, `bitrun_queue_images{model="colors",version="3"} 0`,
		`bitrun_inference_duration_seconds_count{model="colors",version="3"}`, `bitrun_dropped_images_total`} {
		if !strings.Contains(string(b), want) && want != `bitrun_dropped_images_total` {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// TestPageAndCORS: GET / is the embedded page (public, no external
// assets); CORS headers only for allowed origins; preflight answered.
func TestPageAndCORS(t *testing.T) {
	_, _, ts := newTestServer(t, serve.Config{AuthToken: "s3cret", CORSOrigins: []string{"http://ui.example"}}, serve.Options{})
	resp, b := do(t, "GET", ts.URL+"/", "", nil, nil)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || !strings.Contains(string(b), `id="top1"`) {
		t.Fatalf("page: %d %s", resp.StatusCode, resp.Header)
	}
	for _, bad := range []string{"http://", "https://", "src=\"//"} {
		if strings.Contains(string(b), bad) {
			t.Errorf("page refers to an external asset (%q)", bad)
		}
	}
	resp, _ = do(t, "OPTIONS", ts.URL+"/v1/models/colors/predict", "", nil, map[string]string{"Origin": "http://ui.example", "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"})
	if resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Origin") != "http://ui.example" || !strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "Authorization") {
		t.Fatalf("preflight: %d %v", resp.StatusCode, resp.Header)
	}
	resp, _ = do(t, "GET", ts.URL+"/v1/models", "", nil, map[string]string{"Origin": "http://evil.example", "Authorization": "Bearer s3cret"})
	if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("other origin: %d %v", resp.StatusCode, resp.Header)
	}
	resp, _ = do(t, "GET", ts.URL+"/v1/models", "", nil, map[string]string{"Origin": "http://ui.example"})
	if resp.StatusCode != 401 || resp.Header.Get("Access-Control-Allow-Origin") != "http://ui.example" {
		t.Fatalf("allowed origin without token: %d %v", resp.StatusCode, resp.Header)
	}
	if resp, _ := do(t, "OPTIONS", ts.URL+"/v1/models", "", nil, map[string]string{"Origin": "http://evil.example", "Access-Control-Request-Method": "GET"}); resp.StatusCode != 405 {
		t.Fatalf("preflight from another origin: %d", resp.StatusCode)
	}
}
