package export

import (
	"bufio"
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	goruntime "runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bitrun/bitrun/model"
)

// memAvailable is MemAvailable from /proc/meminfo in bytes, or -1.
func memAvailable() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "MemAvailable:" {
			kb, err := strconv.ParseInt(fields[1], 10, 64)
			if err == nil {
				return kb << 10
			}
		}
	}
	return -1
}

// largeParams is model.Init (He-normal kernels) with a random head and GN
// affine, deterministic for seed: it is regenerated rather than kept to
// bound the test's peak memory.
func largeParams(cfg model.Config, seed int64) model.Params {
	p := model.Init(cfg, seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 99))
	for _, s := range cfg.Spec() {
		t := p[s.Name]
		switch s.Kind {
		case model.KindGamma:
			for i := range t.Data {
				t.Data[i] = float32(1 + 0.2*rng.NormFloat64())
			}
		case model.KindBeta, model.KindHeadBias:
			for i := range t.Data {
				t.Data[i] = float32(0.2 * rng.NormFloat64())
			}
		case model.KindHead:
			for i := range t.Data {
				t.Data[i] = float32(0.02 * rng.NormFloat64())
			}
		}
	}
	return p
}

func freeMemory() {
	goruntime.GC()
	debug.FreeOSMemory()
}

// TestExportR152x4 exports the largest released architecture (937M
// parameters, 3.7 GB of float32: over the 2 GB protobuf limit) with
// external data chosen automatically, loads it in ONNX Runtime and compares
// its logits with the native engine on a small input.
func TestExportR152x4(t *testing.T) {
	if testing.Short() {
		t.Skip("R152x4 export writes 3.7 GB and needs about 8 GB of RAM and a few minutes; run without -short (make test-long)")
	}
	if avail := memAvailable(); avail >= 0 && avail < 9<<30 {
		t.Skipf("R152x4 export needs about 8 GB of free RAM, %d MiB available", avail>>20)
	}
	requireORT(t)
	cfg, err := model.Arch("R152x4", 1000)
	if err != nil {
		t.Fatal(err)
	}
	const seed = 11
	path := filepath.Join(t.TempDir(), "r152x4.onnx")
	params := largeParams(cfg, seed)
	start := time.Now()
	res, err := Export(context.Background(), path, cfg, params, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("R152x4 export: %v, model %d bytes, data %d bytes, %d nodes, %d params", time.Since(start), res.Bytes, res.DataBytes, res.Nodes, res.Params)
	if res.DataPath == "" || res.DataBytes < 4*res.Params || res.Bytes > 1<<20 {
		t.Fatalf("auto mode did not move the weights out: %+v", res)
	}
	params = nil
	freeMemory()

	x := randomImages(1, 32, 5)
	start = time.Now()
	p := openORT(t, path)
	t.Logf("ORT load: %v", time.Since(start))
	out := runORT(t, p, x)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	freeMemory()

	m, err := model.New(cfg, largeParams(cfg, seed))
	if err != nil {
		t.Fatal(err)
	}
	logits, features := m.Forward(x)
	dl := checkParity(t, "R152x4 logits", out[OutputLogits], logits)
	df := checkParity(t, "R152x4 features", out[OutputFeatures], features)
	t.Logf("R152x4 parity at 32x32: logits max diff %.3g (range %.3g), features max diff %.3g (range %.3g)", dl.maxAbs, dl.span, df.maxAbs, df.span)
}
