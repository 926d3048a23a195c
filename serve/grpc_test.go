package serve_test

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/bitrun/bitrun/api"
	pb "github.com/bitrun/bitrun/api/inferencepb"
	"github.com/bitrun/bitrun/data"
	"github.com/bitrun/bitrun/internal/testwait"
	"github.com/bitrun/bitrun/runtime"
	"github.com/bitrun/bitrun/serve"
)

// startGRPC serves srv's gRPC protocol on a loopback port and returns a
// client of the generated API (the real gRPC stack on both sides).
func startGRPC(t testing.TB, srv *serve.Server) (pb.GRPCInferenceServiceClient, chan error) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.ServeGRPC(l) }()
	conn, err := grpc.NewClient(l.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return pb.NewGRPCInferenceServiceClient(conn), served
}

// grpcPixels is img as UINT8 HWC RGB pixels.
func grpcPixels(img image.Image) []byte {
	b := img.Bounds()
	m := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	draw.Draw(m, m.Bounds(), img, b.Min, draw.Src)
	px := make([]byte, 0, 3*b.Dx()*b.Dy())
	for i := 0; i < len(m.Pix); i += 4 {
		px = append(px, m.Pix[i], m.Pix[i+1], m.Pix[i+2])
	}
	return px
}

func float32sOf(b []byte) []float32 {
	x := make([]float32, len(b)/4)
	for i := range x {
		x[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return x
}

// bytesOf decodes BYTES raw contents (4-byte little-endian length + bytes).
func bytesOf(b []byte) []string {
	var out []string
	for len(b) >= 4 {
		n := binary.LittleEndian.Uint32(b)
		out = append(out, string(b[4:4+n]))
		b = b[4+n:]
	}
	return out
}

func int64Param(v int64) *pb.InferParameter {
	return &pb.InferParameter{ParameterChoice: &pb.InferParameter_Int64Param{Int64Param: v}}
}

// TestGRPCStatusCodes: every bad call gets the gRPC code codeFor gives its
// error (auth, unknown model or version, malformed tensors, limits), good
// ones answer as the HTTP routes do, and the calls are counted in /metrics.
func TestGRPCStatusCodes(t *testing.T) {
	srv, _, ts := newTestServer(t, serve.Config{AuthToken: "s3cret", MaxImages: 2, MaxBody: 64 << 10, Version: "v1.2.3"}, serve.Options{})
	cl, _ := startGRPC(t, srv)
	bg := context.Background()
	authed := metadata.AppendToOutgoingContext(bg, "authorization", "Bearer s3cret")
	red := grpcPixels(solid(4, 4, color.RGBA{R: 255, A: 255}))
	uint8In := func(shape []int64) *pb.ModelInferRequest_InferInputTensor {
		return &pb.ModelInferRequest_InferInputTensor{Name: "image", Datatype: "UINT8", Shape: shape}
	}
	infer := func(req *pb.ModelInferRequest) func(context.Context) error {
		if req.ModelName == "" {
			req.ModelName = "colors"
		}
		return func(ctx context.Context) error { _, err := cl.ModelInfer(ctx, req); return err }
	}
	cases := []struct {
		name string
		ctx  context.Context
		call func(context.Context) error
		want codes.Code
	}{
		{"live without token", bg, func(ctx context.Context) error { _, err := cl.ServerLive(ctx, &pb.ServerLiveRequest{}); return err }, codes.OK},
		{"ready without token", bg, func(ctx context.Context) error { _, err := cl.ServerReady(ctx, &pb.ServerReadyRequest{}); return err }, codes.OK},
		{"metadata without token", bg, func(ctx context.Context) error {
			_, err := cl.ModelMetadata(ctx, &pb.ModelMetadataRequest{Name: "colors"})
			return err
		}, codes.Unauthenticated},
		{"wrong token", metadata.AppendToOutgoingContext(bg, "authorization", "Bearer nope"), func(ctx context.Context) error {
			_, err := cl.ServerMetadata(ctx, &pb.ServerMetadataRequest{})
			return err
		}, codes.Unauthenticated},
		{"unknown model", authed, func(ctx context.Context) error {
			_, err := cl.ModelReady(ctx, &pb.ModelReadyRequest{Name: "nope"})
			return err
		}, codes.NotFound},
		{"unknown version", authed, func(ctx context.Context) error {
			_, err := cl.ModelMetadata(ctx, &pb.ModelMetadataRequest{Name: "colors", Version: "7"})
			return err
		}, codes.NotFound},
		{"infer unknown model", authed, infer(&pb.ModelInferRequest{ModelName: "nope"}), codes.NotFound},
		{"no input", authed, infer(&pb.ModelInferRequest{}), codes.InvalidArgument},
		{"wrong input name", authed, infer(&pb.ModelInferRequest{Inputs: []*pb.ModelInferRequest_InferInputTensor{{Name: "x", Datatype: "UINT8", Shape: []int64{4, 4, 3}}},
			RawInputContents: [][]byte{red}}), codes.InvalidArgument},
		{"FP16", authed, infer(&pb.ModelInferRequest{Inputs: []*pb.ModelInferRequest_InferInputTensor{{Name: "image", Datatype: "FP16", Shape: []int64{1, 3, 8, 8}}},
			RawInputContents: [][]byte{make([]byte, 2*3*64)}}), codes.InvalidArgument},
		{"FP32 wrong shape", authed, infer(&pb.ModelInferRequest{Inputs: []*pb.ModelInferRequest_InferInputTensor{{Name: "image", Datatype: "FP32", Shape: []int64{1, 3, 4, 4},
			Contents: &pb.InferTensorContents{Fp32Contents: make([]float32, 48)}}}}), codes.InvalidArgument},
		{"FP32 short contents", authed, infer(&pb.ModelInferRequest{Inputs: []*pb.ModelInferRequest_InferInputTensor{{Name: "image", Datatype: "FP32", Shape: []int64{1, 3, 8, 8},
			Contents: &pb.InferTensorContents{Fp32Contents: make([]float32, 10)}}}}), codes.InvalidArgument},
		{"raw length", authed, infer(&pb.ModelInferRequest{Inputs: []*pb.ModelInferRequest_InferInputTensor{uint8In([]int64{4, 4, 3})},
			RawInputContents: [][]byte{red[:10]}}), codes.InvalidArgument},
		{"raw and contents", authed, infer(&pb.ModelInferRequest{Inputs: []*pb.ModelInferRequest_InferInputTensor{{Name: "image", Datatype: "UINT8", Shape: []int64{4, 4, 3},
			Contents: &pb.InferTensorContents{UintContents: []uint32{1}}}}, RawInputContents: [][]byte{red}}), codes.InvalidArgument},
		{"raw count", authed, infer(&pb.ModelInferRequest{Inputs: []*pb.ModelInferRequest_InferInputTensor{uint8In([]int64{4, 4, 3})},
			RawInputContents: [][]byte{red, red}}), codes.InvalidArgument},
		{"uint8 over 255", authed, infer(&pb.ModelInferRequest{Inputs: []*pb.ModelInferRequest_InferInputTensor{{Name: "image", Datatype: "UINT8", Shape: []int64{1, 1, 3},
			Contents: &pb.InferTensorContents{UintContents: []uint32{1, 2, 256}}}}}), codes.InvalidArgument},
		{"unknown output", authed, infer(&pb.ModelInferRequest{Inputs: []*pb.ModelInferRequest_InferInputTensor{uint8In([]int64{4, 4, 3})},
			RawInputContents: [][]byte{red}, Outputs: []*pb.ModelInferRequest_InferRequestedOutputTensor{{Name: "nope"}}}), codes.InvalidArgument},
		{"classification 0", authed, infer(&pb.ModelInferRequest{Inputs: []*pb.ModelInferRequest_InferInputTensor{uint8In([]int64{4, 4, 3})},
			RawInputContents: [][]byte{red}, Outputs: []*pb.ModelInferRequest_InferRequestedOutputTensor{
				{Name: "logits", Parameters: map[string]*pb.InferParameter{api.ParamClassification: int64Param(0)}}}}), codes.InvalidArgument},
		{"too many images", authed, infer(&pb.ModelInferRequest{Inputs: []*pb.ModelInferRequest_InferInputTensor{uint8In([]int64{3, 4, 4, 3})},
			RawInputContents: [][]byte{slices.Concat(red, red, red)}}), codes.ResourceExhausted},
		{"too many pixels", authed, infer(&pb.ModelInferRequest{Inputs: []*pb.ModelInferRequest_InferInputTensor{uint8In([]int64{1, 1 << 20, 1 << 20, 3})},
			RawInputContents: [][]byte{red}}), codes.ResourceExhausted},
		{"message over max body", authed, infer(&pb.ModelInferRequest{Inputs: []*pb.ModelInferRequest_InferInputTensor{uint8In([]int64{1, 200, 200, 3})},
			RawInputContents: [][]byte{make([]byte, 120000)}}), codes.ResourceExhausted},
		{"good infer", authed, infer(&pb.ModelInferRequest{Inputs: []*pb.ModelInferRequest_InferInputTensor{uint8In([]int64{4, 4, 3})},
			RawInputContents: [][]byte{red}}), codes.OK},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := status.Code(tc.call(tc.ctx)); got != tc.want {
				t.Errorf("code %v, want %v (%v)", got, tc.want, tc.call(tc.ctx))
			}
		})
	}

	// Good answers: metadata as the HTTP route shows it, classification
	// strings, the request id echoed.
	sm, err := cl.ServerMetadata(authed, &pb.ServerMetadataRequest{})
	if err != nil || sm.Name != "bitrun" || sm.Version != "v1.2.3" {
		t.Fatalf("server metadata %v %v", sm, err)
	}
	mm, err := cl.ModelMetadata(authed, &pb.ModelMetadataRequest{Name: "colors"})
	if err != nil || mm.Name != "colors" || !slices.Equal(mm.Versions, []string{"1"}) || mm.Platform != "onnxruntime_onnx" ||
		len(mm.Inputs) != 1 || mm.Inputs[0].Name != "image" || !slices.Equal(mm.Inputs[0].Shape, []int64{-1, 3, 8, 8}) || mm.Outputs[0].Name != "logits" {
		t.Fatalf("model metadata %v %v", mm, err)
	}
	mr, err := cl.ModelReady(authed, &pb.ModelReadyRequest{Name: "colors", Version: "1"})
	if err != nil || !mr.Ready {
		t.Fatalf("model ready %v %v", mr, err)
	}
	blue := grpcPixels(solid(5, 3, color.RGBA{B: 255, A: 255}))
	var hdr metadata.MD
	ans, err := cl.ModelInfer(metadata.AppendToOutgoingContext(authed, "x-request-id", "grpc-1"), &pb.ModelInferRequest{ModelName: "colors", Id: "q7",
		Inputs: []*pb.ModelInferRequest_InferInputTensor{{Name: "image", Datatype: "UINT8", Shape: []int64{3, 5, 3},
			Contents: &pb.InferTensorContents{UintContents: func() []uint32 {
				u := make([]uint32, len(blue))
				for i, v := range blue {
					u[i] = uint32(v)
				}
				return u
			}()}}},
		Outputs: []*pb.ModelInferRequest_InferRequestedOutputTensor{
			{Name: "logits", Parameters: map[string]*pb.InferParameter{api.ParamClassification: int64Param(2)}}}}, grpc.Header(&hdr))
	if err != nil {
		t.Fatal(err)
	}
	if ans.Id != "q7" || ans.ModelName != "colors" || ans.ModelVersion != "1" || len(ans.Outputs) != 1 || ans.Outputs[0].Datatype != "BYTES" ||
		!slices.Equal(ans.Outputs[0].Shape, []int64{1, 2}) || len(ans.RawOutputContents) != 1 || strings.Join(hdr.Get("x-request-id"), "") != "grpc-1" {
		t.Fatalf("answer %v header %v", ans, hdr)
	}
	if got := bytesOf(ans.RawOutputContents[0]); len(got) != 2 || !strings.HasSuffix(got[0], ":2:blue") {
		t.Errorf("classification %q", got)
	}

	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/metrics", nil)
	req.Header.Set("Authorization", "Bearer s3cret")
	srv.Handler().ServeHTTP(rec, req)
	for _, want := range []string{
		`bitrun_grpc_requests_total{code="InvalidArgument",method="ModelInfer"}`,
		`bitrun_grpc_requests_total{code="Unauthenticated",method="ModelMetadata"}`,
		`bitrun_grpc_requests_total{code="OK",method="ModelInfer"} 2`,
		`bitrun_batch_size_count{model="colors",version="1"}`,
	} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	_ = ts
}

// TestGRPCGracefulStop: Shutdown lets a gRPC call in flight finish, then
// ServeGRPC returns nil and new calls fail Unavailable.
func TestGRPCGracefulStop(t *testing.T) {
	srv, r, _ := newTestServer(t, serve.Config{}, serve.Options{BatchDelay: -1})
	cl, served := startGRPC(t, srv)
	px := grpcPixels(solid(8, 8, color.White))
	req := &pb.ModelInferRequest{ModelName: "colors", Inputs: []*pb.ModelInferRequest_InferInputTensor{{Name: "image", Datatype: "UINT8", Shape: []int64{8, 8, 3}}},
		RawInputContents: [][]byte{px}}
	if _, err := cl.ModelInfer(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	r.hold()
	got := make(chan error, 1)
	go func() { _, err := cl.ModelInfer(context.Background(), req); got <- err }()
	<-r.started
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		shut <- srv.Shutdown(ctx)
	}()
	waitFor(t, func() bool {
		resp, err := cl.ServerReady(context.Background(), &pb.ServerReadyRequest{})
		return err != nil || !resp.Ready
	})
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v before the call in flight finished", err)
	case <-time.After(50 * time.Millisecond):
	}
	r.release()
	if err := <-got; err != nil {
		t.Errorf("call in flight: %v", err)
	}
	if err := <-shut; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if err := <-served; err != nil {
		t.Errorf("ServeGRPC returned %v", err)
	}
	if _, err := cl.ModelInfer(context.Background(), req); status.Code(err) != codes.Unavailable {
		t.Errorf("call after Shutdown: %v", err)
	}
}

// TestORTGRPCMatchesHTTP: on a real BiT export, the top-k of a gRPC infer
// (UINT8 pixels in one batch, logits out, softmax here) equals the HTTP
// predict route's for the same images and the reference predict path; the
// classification extension ranks the same; FP32 preprocessed contents give
// the same logits.
func TestORTGRPCMatchesHTTP(t *testing.T) {
	path := exportTiny(t)
	srv, cl, _ := startORT(t, path, serve.Config{}, serve.Options{MaxBatch: 8})
	gc, _ := startGRPC(t, srv)
	ref, err := runtime.Open(path, runtime.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	const n, k = 6, 3
	// Each image in its own call at its own size, all at once (so the
	// server batches them), as PNG for HTTP so the pixels are the same.
	var pngs [][]byte
	logits := make([][]float32, n)
	classes := make([][]string, n)
	errs := make(chan error, 2*n)
	for i, jpg := range testImages(t, n) {
		m, err := data.DecodeBytes(jpg, 0)
		if err != nil {
			t.Fatal(err)
		}
		pngs = append(pngs, pngBytes(m))
		b := m.Bounds()
		in := []*pb.ModelInferRequest_InferInputTensor{{Name: "image", Datatype: "UINT8", Shape: []int64{1, int64(b.Dy()), int64(b.Dx()), 3}}}
		raw := [][]byte{grpcPixels(m)}
		go func() {
			ans, err := gc.ModelInfer(context.Background(), &pb.ModelInferRequest{ModelName: "tiny", Inputs: in, RawInputContents: raw,
				Outputs: []*pb.ModelInferRequest_InferRequestedOutputTensor{{Name: "logits"}}})
			if err == nil {
				logits[i] = float32sOf(ans.RawOutputContents[0])
			}
			errs <- err
		}()
		go func() {
			ans, err := gc.ModelInfer(context.Background(), &pb.ModelInferRequest{ModelName: "tiny", Inputs: in, RawInputContents: raw,
				Outputs: []*pb.ModelInferRequest_InferRequestedOutputTensor{
					{Name: "logits", Parameters: map[string]*pb.InferParameter{api.ParamClassification: int64Param(k)}}}})
			if err == nil {
				classes[i] = bytesOf(ans.RawOutputContents[0])
			}
			errs <- err
		}()
	}
	for range 2 * n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	distinct := map[int]bool{}
	for i := range n {
		hp, err := cl.Predict(context.Background(), "tiny", pngs[i], k)
		if err != nil {
			t.Fatal(err)
		}
		want := reference(t, ref, pngs[i], k)
		row := logits[i]
		probs := serve.Softmax(row)
		for j := range k {
			g := hp.Predictions[j]
			if g.Index != want[j].Index || g.Label != want[j].Label || math.Abs(g.Score-want[j].Score) > 1e-6 {
				t.Errorf("image %d rank %d: HTTP %+v, reference %+v", i, j, g, want[j])
			}
			if gi := rankOf(row, j); gi != g.Index || math.Abs(probs[gi]-g.Score) > 1e-6 {
				t.Errorf("image %d rank %d: gRPC class %d p=%v, HTTP %+v", i, j, gi, probs[gi], g)
			}
			f := strings.SplitN(classes[i][j], ":", 3)
			if idx, _ := strconv.Atoi(f[1]); idx != g.Index || f[2] != g.Label {
				t.Errorf("image %d rank %d: classification %q, HTTP %+v", i, j, classes[i][j], g)
			}
		}
		distinct[hp.Predictions[0].Index] = true
	}
	if len(distinct) < 2 {
		t.Errorf("every image got class %v: the test does not discriminate", distinct)
	}

	// FP32 preprocessed input as typed contents: the same logits as the
	// pixels gave (the same preprocessing, done here).
	m, _ := data.DecodeBytes(pngs[1], 0)
	x := make([]float32, 3*ortRes*ortRes)
	data.EvalTensor(m, ortRes, 3, data.BiTNorm, x)
	fa, err := gc.ModelInfer(context.Background(), &pb.ModelInferRequest{ModelName: "tiny",
		Inputs: []*pb.ModelInferRequest_InferInputTensor{{Name: "image", Datatype: "FP32", Shape: []int64{1, 3, ortRes, ortRes},
			Contents: &pb.InferTensorContents{Fp32Contents: x}}},
		Outputs: []*pb.ModelInferRequest_InferRequestedOutputTensor{{Name: "logits"}}})
	if err != nil {
		t.Fatal(err)
	}
	got := float32sOf(fa.RawOutputContents[0])
	for j, v := range got {
		if math.Abs(float64(v-logits[1][j])) > 1e-5 {
			t.Fatalf("FP32 contents logits %v, UINT8 pixels %v", got, logits[1])
		}
	}
}

// rankOf is the index of row's j-th largest value (ties to the lower index),
// by the tests' own ranking rather than the server's.
func rankOf(row []float32, j int) int { return refRanking(row)[j] }

// refRanking is the indices of row from the largest value down, ties to the
// lower index: a plain stable sort, independent of internal/topk (which
// the server and eval share), for the tests to check the server against.
func refRanking(row []float32) []int {
	idx := make([]int, len(row))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return row[idx[a]] > row[idx[b]] })
	return idx
}

// stallGRPC opens a ModelInfer call on addr with a raw HTTP/2 client that
// declares a message of n bytes, sends a few of them and then nothing: what
// grpc-go buffers at the declared size before any handler runs. The call's
// response (or error) is sent on the returned channel when it ends.
func stallGRPC(t *testing.T, addr string, n uint32) <-chan error {
	t.Helper()
	tr := &http2.Transport{AllowHTTP: true, DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}}
	t.Cleanup(tr.CloseIdleConnections)
	pr, pw := io.Pipe()
	t.Cleanup(func() { pw.Close() })
	req, err := http.NewRequest("POST", "http://"+addr+"/inference.GRPCInferenceService/ModelInfer", pr)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/grpc")
	req.Header.Set("TE", "trailers")
	go func() {
		prefix := []byte{0, 0, 0, 0, 0}
		binary.BigEndian.PutUint32(prefix[1:], n)
		pw.Write(append(prefix, make([]byte, 100)...)) // then stall
	}()
	done := make(chan error, 1)
	go func() {
		resp, err := tr.RoundTrip(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			err = fmt.Errorf("grpc-status %q%q", resp.Header.Get("Grpc-Status"), resp.Trailer.Get("Grpc-Status"))
		}
		done <- err
	}()
	return done
}

// TestGRPCStalledMessages (found by a security review): calls that declare
// a large message and stall hold the body budget (Config.MaxBodyMemory),
// not memory outside it: with room for two, a third call is refused
// ResourceExhausted before anything is buffered, while the health probes
// still answer (slots of their own, bounded: TestGRPCProbeSlots); the
// stalled calls end once the body and request timeouts pass, and their
// room comes back.
func TestGRPCStalledMessages(t *testing.T) {
	const maxBody = 1 << 20
	srv, _, ts := newTestServer(t, serve.Config{MaxBody: maxBody, MaxBodyMemory: 2 * maxBody,
		BodyTimeout: time.Second, RequestTimeout: time.Second}, serve.Options{BatchDelay: -1})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.ServeGRPC(l)
	conn, err := grpc.NewClient(l.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cl := pb.NewGRPCInferenceServiceClient(conn)
	first, second := stallGRPC(t, l.Addr().String(), maxBody-1), stallGRPC(t, l.Addr().String(), maxBody-1)
	// Wait until both reserve the budget before probing it (a probe would
	// compete with them for it).
	held := fmt.Sprintf("\nbitrun_request_body_bytes %g\n", float64(2*maxBody))
	waitFor(t, func() bool {
		_, b := do(t, "GET", ts.URL+"/metrics", "", nil, nil)
		return strings.Contains(string(b), held)
	})
	if _, err := cl.ServerMetadata(context.Background(), &pb.ServerMetadataRequest{}); status.Code(err) != codes.ResourceExhausted ||
		!strings.Contains(err.Error(), "max-body-memory") {
		t.Fatalf("a call with the budget full: %v, want ResourceExhausted", err)
	}
	if _, err := cl.ServerLive(context.Background(), &pb.ServerLiveRequest{}); err != nil {
		t.Errorf("liveness probe with the body budget full: %v", err)
	}
	for _, c := range []<-chan error{first, second} {
		if err := testwait.Returns(t, 10*time.Second, "a stalled gRPC call", func() error { return <-c }); err == nil {
			t.Error("stalled call: no error")
		}
	}
	testwait.Until(t, 10*time.Second, 20*time.Millisecond, func() error {
		_, err := cl.ServerLive(context.Background(), &pb.ServerLiveRequest{})
		return err
	})
}
