package deploy

import (
	"bytes"
	"context"
	"encoding/json"
	"image"
	"image/color"
	"image/jpeg"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The image TestImage runs: BITRUN_IMAGE, else what `make image` tags.
func imageName() string {
	if s := os.Getenv("BITRUN_IMAGE"); s != "" {
		return s
	}
	return "localhost/bitrun:latest"
}

// podmanRun is how podman runs containers on this project's machines:
// runc (crun refuses the host's hybrid cgroups), the host network, and
// explicit limits (the defaults are refused).
var podmanRun = []string{"run", "--runtime", "runc", "--network", "host",
	"--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"}

// requirePodman skips (or fails under BITRUN_REQUIRE_PODMAN=1, as make test
// sets it) when podman or the image is missing.
func requirePodman(t *testing.T) {
	t.Helper()
	miss := func(format string, args ...any) {
		t.Helper()
		if os.Getenv("BITRUN_REQUIRE_PODMAN") == "1" {
			t.Fatalf(format, args...)
		}
		t.Skipf(format, args...)
	}
	if _, err := exec.LookPath("podman"); err != nil {
		miss("podman not installed (make setup installs it): %v", err)
	}
	if err := exec.Command("podman", "image", "exists", imageName()).Run(); err != nil {
		miss("no image %s: run make image (%v)", imageName(), err)
	}
}

// hostBitrun is the bitrun binary the image was built from (make image
// builds bin/bitrun), used to make the model and the reference answer.
func hostBitrun(t *testing.T) string {
	t.Helper()
	p := os.Getenv("BITRUN_BIN")
	if p == "" {
		p, _ = filepath.Abs("../bin/bitrun")
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("bitrun binary: %v (make build)", err)
	}
	return p
}

func command(t *testing.T, name string, args ...string) string {
	t.Helper()
	var stderr bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

// TestImage checks the container image `make image` built: its config, the
// native libraries inside it, and a real run with podman serving a small
// exported BiT with the ServingRuntime's own arguments, whose answer must
// equal `bitrun predict`'s.
func TestImage(t *testing.T) {
	if testing.Short() && os.Getenv("BITRUN_REQUIRE_PODMAN") != "1" {
		t.Skip("runs a container (set BITRUN_REQUIRE_PODMAN=1 or drop -short)")
	}
	requirePodman(t)
	img := imageName()

	t.Run("config", func(t *testing.T) {
		var cfg []struct {
			Config struct {
				User         string
				Entrypoint   []string
				ExposedPorts map[string]any
				Labels       map[string]string
			}
			Healthcheck *struct{ Test []string } // podman shows it beside Config
		}
		if err := json.Unmarshal([]byte(command(t, "podman", "image", "inspect", img)), &cfg); err != nil || len(cfg) != 1 {
			t.Fatalf("podman image inspect: %v", err)
		}
		c := cfg[0].Config
		if c.User != "65532:65532" || len(c.Entrypoint) != 1 || c.Entrypoint[0] != "/usr/local/bin/bitrun" {
			t.Errorf("user %q, entrypoint %v", c.User, c.Entrypoint)
		}
		if _, ok := c.ExposedPorts["8080/tcp"]; !ok {
			t.Errorf("exposed ports %v", c.ExposedPorts)
		}
		if hc := cfg[0].Healthcheck; hc == nil || !strings.Contains(strings.Join(hc.Test, " "), "bitrun health") {
			t.Errorf("health check %+v", hc)
		}
		for _, k := range []string{"version", "revision", "source"} {
			if c.Labels["org.opencontainers.image."+k] == "" {
				t.Errorf("no label org.opencontainers.image.%s in %v", k, c.Labels)
			}
		}
	})

	t.Run("libraries", func(t *testing.T) {
		// Every native library loads from the image alone, as the image's user.
		run := append(append([]string{}, podmanRun...), "--rm", "-e", "BITRUN_GEMM=openblas", img, "version")
		out := command(t, "podman", run...)
		for _, want := range []string{"gemm: openblas", "jpeg: libjpeg-turbo", "onnxruntime: 1."} {
			if !strings.Contains(out, want) {
				t.Errorf("bitrun version in the image: no %q in\n%s", want, out)
			}
		}
		run = append(append([]string{}, podmanRun...), "--rm", "--entrypoint", "/usr/local/bin/bitrun", img, "config", "show")
		if out := command(t, "podman", run...); !strings.Contains(out, "/home/bitrun/") {
			t.Errorf("config show: the user's home is not /home/bitrun:\n%s", out)
		}
	})

	t.Run("serve", func(t *testing.T) { testImageServe(t, img) })
}

// testImageServe serves a tiny exported BiT from the image with the
// ServingRuntime's arguments and compares the answer with bitrun predict.
func testImageServe(t *testing.T, img string) {
	bitrun := hostBitrun(t)
	dir := t.TempDir()
	models := filepath.Join(dir, "models")
	if err := os.Mkdir(models, 0o755); err != nil {
		t.Fatal(err)
	}
	// The container's user (65532) reads the mounted folder.
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// A tiny BiT trained for 4 steps on MNIST (a fresh one's zero head
	// would give every class the same score), with labels.
	run, labels, onnx := filepath.Join(dir, "run"), filepath.Join(dir, "labels.txt"), filepath.Join(models, "model.onnx")
	if err := os.WriteFile(labels, []byte("zero\none\ntwo\nthree\nfour\nfive\nsix\nseven\neight\nnine\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	command(t, bitrun, "train", "--arch", "tiny", "--data", "mnist", "--steps", "4", "--batch", "16", "--lr", "0.3",
		"--resolution", "28", "--pre-size", "32", "--flip=false", "--out", run)
	command(t, bitrun, "export", "--weights", filepath.Join(run, "weights.npz"), "--out", onnx, "--resolution", "32", "--labels", labels)
	photo := filepath.Join(dir, "photo.jpg")
	writeJPEG(t, photo)
	var want []struct {
		Top []struct {
			Index int
			Label string
			Score float64
		}
	}
	if err := json.Unmarshal([]byte(command(t, bitrun, "predict", "--onnx", onnx, "--json", "--top-k", "3", photo)), &want); err != nil || len(want) != 1 {
		t.Fatalf("predict --json: %v", err)
	}

	// The ServingRuntime's container, with the InferenceService name for
	// {{.Name}} and a free loopback port (podman shares the host network).
	sr := one[ServingRuntime](t, readManifests(t))
	c := sr.Spec.Containers[0]
	var args []string
	for _, a := range c.Args {
		args = append(args, strings.ReplaceAll(a, "{{.Name}}", "bit"))
	}
	addr, grpcAddr := "127.0.0.1:"+strconv.Itoa(freePort(t)), "127.0.0.1:"+strconv.Itoa(freePort(t))
	name := "bitrun-test-" + strconv.Itoa(os.Getpid())
	podArgs := append(append([]string{}, podmanRun...), "-d", "--name", name, "--health-interval", "disable",
		"-v", models+":/mnt/models:ro", "-e", "BITRUN_SERVE_ADDR="+addr, "-e", "BITRUN_SERVE_GRPC_ADDR="+grpcAddr, img)
	command(t, "podman", append(podArgs, args...)...)
	t.Cleanup(func() { _ = exec.Command("podman", "rm", "-f", "-t", "0", name).Run() })
	logs := func() string { out, _ := exec.Command("podman", "logs", name).CombinedOutput(); return string(out) }

	base := "http://" + addr
	deadline := time.Now().Add(60 * time.Second)
	for !ready(base) {
		if time.Now().After(deadline) {
			t.Fatalf("not ready in 60 s:\n%s", logs())
		}
		if out, _ := exec.Command("podman", "inspect", "--format", "{{.State.Running}}", name).Output(); strings.TrimSpace(string(out)) != "true" {
			t.Fatalf("the container stopped:\n%s", logs())
		}
		time.Sleep(100 * time.Millisecond)
	}

	if envValue(c.Env, "BITRUN_SERVE_GRPC_ADDR") != "" {
		conn, err := net.DialTimeout("tcp", grpcAddr, 5*time.Second)
		if err != nil {
			t.Errorf("gRPC port: %v", err)
		} else {
			conn.Close()
		}
	}
	body, err := os.ReadFile(photo)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(base+"/v1/models/bit/predict?top_k=3", "image/jpeg", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Predictions []struct {
			Index int
			Label string
			Score float64
		}
	}
	err = json.NewDecoder(resp.Body).Decode(&got)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("predict over HTTP: %s %v\n%s", resp.Status, err, logs())
	}
	if len(got.Predictions) != len(want[0].Top) {
		t.Fatalf("container %+v, predict %+v", got.Predictions, want[0].Top)
	}
	for i, w := range want[0].Top {
		g := got.Predictions[i]
		if g.Index != w.Index || g.Label != w.Label || math.Abs(g.Score-w.Score) > 1e-6 {
			t.Errorf("rank %d: container %+v, bitrun predict %+v", i, g, w)
		}
	}

	// The image's health check, then a graceful stop (exit 0 on SIGTERM).
	if out, err := exec.Command("podman", "healthcheck", "run", name).CombinedOutput(); err != nil {
		t.Errorf("podman healthcheck run: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "podman", "stop", "-t", "40", name).CombinedOutput(); err != nil {
		t.Fatalf("podman stop: %v\n%s", err, out)
	}
	if code := strings.TrimSpace(command(t, "podman", "inspect", "--format", "{{.State.ExitCode}}", name)); code != "0" {
		t.Errorf("exit code %s after SIGTERM:\n%s", code, logs())
	}
	if l := logs(); !strings.Contains(l, `"msg":"stopped"`) {
		t.Errorf("no stopped line after SIGTERM:\n%s", l)
	}
}

func ready(base string) bool {
	resp, err := http.Get(base + "/v2/health/ready")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// writeJPEG writes a 61×47 colour gradient as a JPEG.
func writeJPEG(t *testing.T, path string) {
	t.Helper()
	m := image.NewRGBA(image.Rect(0, 0, 61, 47))
	for y := range 47 {
		for x := range 61 {
			m.Set(x, y, color.RGBA{uint8(4 * x), uint8(5 * y), uint8(2 * (x + y)), 255})
		}
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, m, nil); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}
