package main

// An independent gRPC client (issue 15): Debian's python3-grpcio and
// python3-protobuf, with message classes generated here by Debian's protoc
// from api/inferencepb/grpc_predict_v2.proto, call a real `bitrun serve
// --grpc-addr`. It fails instead of skipping when BITRUN_REQUIRE_PYGRPC=1
// (make test; make setup installs the packages) and they are missing.

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
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	pb "github.com/bitrun/bitrun/api/inferencepb"
	"github.com/bitrun/bitrun/client"
	"github.com/bitrun/bitrun/internal/testenv"
)

// systemPython is Debian's interpreter, whose dist-packages hold
// python3-grpcio: not whatever python3 comes first on PATH.
const systemPython = "/usr/bin/python3"

// requirePyGRPC returns protoc's path, or skips (fails under
// BITRUN_REQUIRE_PYGRPC=1) when Debian's Python gRPC stack or protoc is missing.
func requirePyGRPC(t *testing.T) string {
	t.Helper()
	var missing []string
	if out, err := exec.Command(systemPython, "-c", "import grpc, google.protobuf").CombinedOutput(); err != nil {
		missing = append(missing, fmt.Sprintf("%s with grpc and protobuf (%v: %s)", systemPython, err, bytes.TrimSpace(out)))
	}
	protoc, err := exec.LookPath("protoc")
	if err != nil {
		missing = append(missing, "protoc")
	}
	if len(missing) == 0 {
		return protoc
	}
	testenv.Require(t, "BITRUN_REQUIRE_PYGRPC", "Python gRPC client",
		errors.New("missing "+strings.Join(missing, ", ")+"; make setup installs python3-grpcio, python3-protobuf and protobuf-compiler"))
	return ""
}

type pyAnswer struct {
	Infer []struct {
		ModelName string    `json:"model_name"`
		Shape     []int64   `json:"shape"`
		Logits    []float32 `json:"logits"`
		Top1      int       `json:"top1"`
		Classes   []string  `json:"classes"`
	} `json:"infer"`
	Errors map[string]string `json:"errors"`
}

// TestPythonGRPCClient: grpcio's client, calling ModelInfer with UINT8
// pixels, gets the same logits and top-1 as the Go gRPC client and the same
// top-1 as HTTP predict of the same pixels (as PNG); its classification
// answer ranks the same class first; a bad input, a short pixel buffer, an
// unknown model and a missing token get the gRPC codes the protocol maps
// them to.
func TestPythonGRPCClient(t *testing.T) {
	requireORTCLI(t)
	protoc := requirePyGRPC(t)
	m := tinyModel(t)
	dir := t.TempDir()

	stubs := filepath.Join(dir, "stubs")
	os.Mkdir(stubs, 0o755)
	if out, err := exec.Command(protoc, "-I", "../../api/inferencepb", "--python_out="+stubs,
		"../../api/inferencepb/grpc_predict_v2.proto").CombinedOutput(); err != nil {
		t.Fatalf("protoc --python_out: %v\n%s", err, out)
	}
	const token = "py-secret"
	tokenFile := filepath.Join(dir, "token")
	os.WriteFile(tokenFile, []byte(token+"\n"), 0o600)
	base, grpcAddr, stop := startServeGRPC(t, "--onnx", m.onnx, "--name", "fashion", "--auth-token-file", tokenFile)
	defer func() {
		if err := stop(); err != nil {
			t.Errorf("serve returned %v after cancel", err)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	hc, err := client.New(base, client.WithToken(token))
	if err != nil {
		t.Fatal(err)
	}
	md, err := hc.Metadata(ctx, "fashion")
	if err != nil {
		t.Fatal(err)
	}

	// Images of different sizes and content, as raw HWC RGB for the
	// clients and PNG for predict.
	type testImage struct {
		rgb  []byte
		png  string
		h, w int
	}
	var imgs []testImage
	var jobImages []map[string]any
	for i := range 4 {
		w, h := 23+9*i, 31+5*i
		im := image.NewRGBA(image.Rect(0, 0, w, h))
		rgb := make([]byte, 0, 3*w*h)
		for y := range h {
			for x := range w {
				c := color.RGBA{uint8(x*(i+5) + 40*i), uint8(y * (9 - 2*i)), uint8((x*y + 70*i) % 256), 255}
				im.SetRGBA(x, y, c)
				rgb = append(rgb, c.R, c.G, c.B)
			}
		}
		raw := filepath.Join(dir, "img"+strconv.Itoa(i)+".rgb")
		os.WriteFile(raw, rgb, 0o644)
		imgs = append(imgs, testImage{rgb: rgb, png: writePNG(t, dir, i, im), h: h, w: w})
		jobImages = append(jobImages, map[string]any{"path": raw, "h": h, "w": w})
	}
	const k = 3
	job, _ := json.Marshal(map[string]any{"addr": grpcAddr, "model": "fashion", "input": md.Inputs[0].Name,
		"output": md.Outputs[0].Name, "token": token, "k": k, "images": jobImages})

	py := exec.CommandContext(ctx, systemPython, "testdata/pygrpc_client.py", stubs)
	py.Env = append(os.Environ(), "PYTHONNOUSERSITE=1", "PYTHONDONTWRITEBYTECODE=1")
	py.Stdin = bytes.NewReader(job)
	var stderr bytes.Buffer
	py.Stderr = &stderr
	out, err := py.Output()
	if err != nil {
		t.Fatalf("python client: %v\n%s", err, stderr.String())
	}
	var ans pyAnswer
	if err := json.Unmarshal(out, &ans); err != nil {
		t.Fatalf("python answer: %v\n%s", err, out)
	}
	t.Logf("python: top-1 %v, classification of image 0 %q, error codes %v", func() (v []int) {
		for _, a := range ans.Infer {
			v = append(v, a.Top1)
		}
		return v
	}(), ans.Infer[0].Classes, ans.Errors)
	if len(ans.Infer) != len(imgs) {
		t.Fatalf("python answered %d images, want %d", len(ans.Infer), len(imgs))
	}

	// The Go client of the generated API, same requests.
	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	gc := pb.NewGRPCInferenceServiceClient(conn)
	gctx := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
	for i, im := range imgs {
		p := ans.Infer[i]
		resp, err := gc.ModelInfer(gctx, &pb.ModelInferRequest{ModelName: "fashion",
			Inputs:           []*pb.ModelInferRequest_InferInputTensor{{Name: md.Inputs[0].Name, Datatype: "UINT8", Shape: []int64{1, int64(im.h), int64(im.w), 3}}},
			RawInputContents: [][]byte{im.rgb},
			Outputs:          []*pb.ModelInferRequest_InferRequestedOutputTensor{{Name: md.Outputs[0].Name}}})
		if err != nil {
			t.Fatal(err)
		}
		goLogits := float32sLE(resp.RawOutputContents[0])
		if p.ModelName != "fashion" || len(p.Shape) != 2 || p.Shape[0] != 1 || int(p.Shape[1]) != len(goLogits) || len(p.Logits) != len(goLogits) {
			t.Fatalf("image %d: python answer %+v, Go logits %v", i, p, goLogits)
		}
		goTop := 0
		for j, v := range goLogits {
			if math.Abs(float64(v-p.Logits[j])) > 1e-5*(1+math.Abs(float64(v))) {
				t.Errorf("image %d logit %d: python %v, Go %v", i, j, p.Logits[j], v)
			}
			if v > goLogits[goTop] {
				goTop = j
			}
		}
		hp, err := hc.Predict(ctx, "fashion", mustRead(t, im.png), k)
		if err != nil {
			t.Fatal(err)
		}
		if p.Top1 != goTop || p.Top1 != hp.Predictions[0].Index {
			t.Errorf("image %d top-1: python %d, Go gRPC %d, HTTP predict %d (%s)", i, p.Top1, goTop, hp.Predictions[0].Index, hp.Predictions[0].Label)
		}
		// Classification strings are "score:index:label", best first.
		if len(p.Classes) != k {
			t.Errorf("image %d: python classification %q, want %d", i, p.Classes, k)
		} else if f := strings.SplitN(p.Classes[0], ":", 3); len(f) != 3 || f[1] != strconv.Itoa(hp.Predictions[0].Index) || f[2] != hp.Predictions[0].Label {
			t.Errorf("image %d: python classification %q, HTTP top-1 %+v", i, p.Classes, hp.Predictions[0])
		}
	}
	for c, want := range map[string]string{
		"bad_shape": "INVALID_ARGUMENT", "bad_input_name": "INVALID_ARGUMENT", "short_pixels": "INVALID_ARGUMENT",
		"unknown_model": "NOT_FOUND", "no_token": "UNAUTHENTICATED",
	} {
		if got := ans.Errors[c]; got != want {
			t.Errorf("python %s: status %s, want %s", c, got, want)
		}
	}
}

func float32sLE(b []byte) []float32 {
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(uint32(b[4*i]) | uint32(b[4*i+1])<<8 | uint32(b[4*i+2])<<16 | uint32(b[4*i+3])<<24)
	}
	return out
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
