package main

import (
	"encoding/json"
	"errors"
	"math"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

var listenGRPC = regexp.MustCompile(`"msg":"listening","grpc":"([^"]+)"`)

// startServeGRPC is startServeCLI with --grpc-addr on a free loopback
// port; it returns the HTTP base URL and the gRPC address.
func startServeGRPC(t *testing.T, args ...string) (base, grpcAddr string, stop func() error) {
	t.Helper()
	base, logs, stop := startServeCLI(t, append(args, "--grpc-addr", "127.0.0.1:0")...)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if m := listenGRPC.FindStringSubmatch(logs.String()); m != nil {
			return base, m[1], stop
		}
		if time.Now().After(deadline) {
			stop()
			t.Fatalf("no gRPC listening line:\n%s", logs.String())
		}
	}
}

// TestLoadtestProtocols: against a real `bitrun serve --grpc-addr` with
// the tiny export, every --protocol at batch 1 and 3 answers every request
// with a valid answer, and the report counts them (requests, images/s,
// percentiles, status codes, the server's batches).
func TestLoadtestProtocols(t *testing.T) {
	requireORTCLI(t)
	m := tinyModel(t)
	files := writeTestJPEGs(t, 2)
	base, grpcAddr, stop := startServeGRPC(t, "--onnx", m.onnx, "--name", "fashion", "--max-batch", "4")
	defer func() {
		if err := stop(); err != nil {
			t.Errorf("serve returned %v after cancel", err)
		}
	}()
	const requests = 12
	for _, proto := range loadProtocols {
		for _, batch := range []int{1, 3} {
			images := []string{"--image", files[0], "--image", files[1]}
			if proto == protoInferUint8 {
				images = images[:2] // one UINT8 tensor: images of one size
			}
			args := append([]string{"loadtest", "--url", base, "--protocol", proto, "--batch", strconv.Itoa(batch)},
				append(images, "--concurrency", "3", "--requests", strconv.Itoa(requests), "--top-k", "3", "--json")...)
			if proto == protoGRPC {
				args = append(args, "--grpc-addr", grpcAddr)
			}
			out, _, err := execCLI(t, args...)
			if err != nil {
				t.Errorf("%s batch %d: %v", proto, batch, err)
				continue
			}
			var rep loadReport
			if err := json.Unmarshal([]byte(out), &rep); err != nil {
				t.Fatalf("%s: %v\n%s", proto, err, out)
			}
			success := "200"
			if proto == protoGRPC {
				success = "OK"
			}
			if rep.Protocol != proto || rep.Batch != batch || rep.Requests != requests || rep.OK != requests ||
				rep.Lost != 0 || rep.Invalid != 0 || rep.Status[success] != requests || len(rep.Status) != 1 ||
				!(rep.ImagesPerSec > 0 && math.Abs(rep.ImagesPerSec-rep.Throughput*float64(batch)) < 1e-6*rep.ImagesPerSec) ||
				!(rep.LatencyMs.P50 > 0 && rep.LatencyMs.P50 <= rep.LatencyMs.P99) || rep.Batches < 1 {
				t.Errorf("%s batch %d: report %+v", proto, batch, rep)
			}
		}
	}
	// One UINT8 tensor cannot hold images of two sizes.
	if _, _, err := execCLI(t, "loadtest", "--url", base, "--protocol", protoInferUint8, "--batch", "2",
		"--image", files[0], "--image", files[1], "--requests", "2"); !errors.As(err, new(usageError)) || !strings.Contains(err.Error(), "one size") {
		t.Errorf("infer-uint8 with two image sizes: %v, want a usage error", err)
	}
	// The text report names the protocol and images/s.
	out, _, err := execCLI(t, "loadtest", "--url", base, "--protocol", protoGRPC, "--grpc-addr", grpcAddr, "--grpc-conns", "2",
		"--batch", "2", "--image", files[0], "--concurrency", "2", "--requests", "4")
	if err != nil || !strings.Contains(out, "protocol     grpc, 2 image(s)") || !strings.Contains(out, "images/s") || !strings.Contains(out, "OK: 4") {
		t.Errorf("loadtest text: %v\n%s", err, out)
	}
}

// TestLoadtestProtocolUsage: protocol flags that cannot work are usage
// errors before anything is sent; a gRPC address off this machine is refused.
func TestLoadtestProtocolUsage(t *testing.T) {
	img := writeTestJPEGs(t, 1)[0]
	for _, args := range [][]string{
		{"--protocol", "soap"},
		{"--protocol", "grpc"},
		{"--protocol", "infer-json", "--grpc-addr", "127.0.0.1:9001"},
		{"--batch", "0"},
		{"--batch", "1000"},
		{"--protocol", "grpc", "--grpc-addr", "192.0.2.1:9001", "--url", "http://127.0.0.1:1"},
		{"--protocol", "grpc", "--grpc-addr", "no-port", "--url", "http://127.0.0.1:1"},
		{"--grpc-conns", "2"},
		{"--protocol", "grpc", "--grpc-addr", "127.0.0.1:9001", "--grpc-conns", "0", "--url", "http://127.0.0.1:1"},
		{"--protocol", "grpc", "--grpc-addr", "127.0.0.1:9001", "--grpc-conns", "9", "--concurrency", "4", "--url", "http://127.0.0.1:1"},
	} {
		_, _, err := execCLI(t, append([]string{"loadtest", "--image", img}, args...)...)
		if !errors.As(err, new(usageError)) {
			t.Errorf("%v: got %v, want a usage error", args, err)
		}
	}
}
