package export

import (
	"fmt"
	"math"
	"sync"
	"testing"

	"github.com/bitrun/bitrun/model"
	"github.com/bitrun/bitrun/nn"
	"github.com/bitrun/bitrun/runtime"
)

// nativeCache memoises native forwards: several exports of the same weights
// are compared against the same reference outputs.
type nativeCache struct {
	mu  sync.Mutex
	m   *model.Model
	out map[string][2]*nn.Tensor
}

func newNativeCache(t testing.TB, cfg model.Config, params model.Params) *nativeCache {
	m, err := model.New(cfg, params)
	if err != nil {
		t.Fatal(err)
	}
	return &nativeCache{m: m, out: map[string][2]*nn.Tensor{}}
}

func (c *nativeCache) forward(x *nn.Tensor, key string) (logits, features *nn.Tensor) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r, ok := c.out[key]; ok {
		return r[0], r[1]
	}
	logits, features = c.m.Forward(x)
	c.out[key] = [2]*nn.Tensor{logits, features}
	return logits, features
}

// parityCase is one export configuration checked against the native engine.
type parityCase struct {
	name string
	opts Options
}

var parityCases = []parityCase{
	{"opset17", Options{}},
	{"opset21", Options{Opset: 21}},
	{"trainable", Options{Trainable: true}},
	{"trainable-opset21", Options{Opset: 21, Trainable: true}},
	{"external", Options{External: ExternalAlways}},
}

// checkExportParity exports cfg/params with every parity case and checks
// ONNX Runtime against model.Forward at each resolution and batch size.
func checkExportParity(t *testing.T, cfg model.Config, params model.Params, sizes, batches []int, cases []parityCase) {
	requireORT(t)
	native := newNativeCache(t, cfg, params)
	// Outputs of the first case, to check the variants agree with each other.
	first := map[string]map[string]runtime.Output{}
	for _, pc := range cases {
		t.Run(pc.name, func(t *testing.T) {
			path, res := exportFile(t, cfg, params, pc.opts)
			if (pc.opts.External == ExternalAlways) != (res.DataPath != "") {
				t.Fatalf("external mode %v wrote data file %q", pc.opts.External, res.DataPath)
			}
			p := openORT(t, path)
			worst := diff{}
			for _, size := range sizes {
				for _, n := range batches {
					key := fmt.Sprintf("%dx%d", n, size)
					x := randomImages(n, size, uint64(size))
					wantLogits, wantFeat := native.forward(x, key)
					out := runORT(t, p, x)
					dl := checkParity(t, pc.name+" logits "+key, out[OutputLogits], wantLogits)
					checkParity(t, pc.name+" features "+key, out[OutputFeatures], wantFeat)
					checkProbabilities(t, pc.name+" "+key, out[OutputProbabilities], out[OutputLogits])
					if dl.maxAbs > worst.maxAbs {
						worst = dl
					}
					if ref, ok := first[key]; ok {
						for _, name := range []string{OutputLogits, OutputFeatures, OutputProbabilities} {
							if d := compare(out[name].Data, ref[name].Data); d.maxAbs > tolAbs {
								t.Errorf("%s %s differs from %s by %.3g", key, name, cases[0].name, d.maxAbs)
							}
						}
					} else {
						first[key] = out
					}
				}
			}
			t.Logf("%s %s: max |logit diff| %.3g (logit range %.3g); model %d bytes, data %d bytes, %d nodes, export %v",
				cfg.Name, pc.name, worst.maxAbs, worst.span, res.Bytes, res.DataBytes, res.Nodes, res.Duration)
		})
	}
}

// checkProbabilities checks that probabilities are softmax(logits): each
// row sums to 1 and matches the softmax computed here.
func checkProbabilities(t testing.TB, what string, probs, logits runtime.Output) {
	t.Helper()
	if len(probs.Shape) != 2 || len(probs.Data) != len(logits.Data) {
		t.Fatalf("%s: probabilities shape %v, logits %v", what, probs.Shape, logits.Shape)
	}
	k := int(probs.Shape[1])
	for i := 0; i < int(probs.Shape[0]); i++ {
		row, lrow := probs.Data[i*k:(i+1)*k], logits.Data[i*k:(i+1)*k]
		var sum, z float64
		mx := math.Inf(-1)
		for _, v := range lrow {
			mx = math.Max(mx, float64(v))
		}
		for _, v := range lrow {
			z += math.Exp(float64(v) - mx)
		}
		for j, v := range row {
			sum += float64(v)
			if want := math.Exp(float64(lrow[j])-mx) / z; math.Abs(float64(v)-want) > 1e-5 {
				t.Fatalf("%s: probabilities[%d][%d] = %g, softmax of logits %g", what, i, j, v, want)
			}
		}
		if math.Abs(sum-1) > 1e-5 {
			t.Fatalf("%s: probabilities row %d sums to %.7f", what, i, sum)
		}
	}
}

func TestParityTiny(t *testing.T) {
	cfg, err := model.Arch("tiny", 10)
	if err != nil {
		t.Fatal(err)
	}
	checkExportParity(t, cfg, randomParams(cfg, 1), []int{64, 96}, []int{1, 4}, parityCases)
}

func TestParityR50x1(t *testing.T) {
	if testing.Short() {
		t.Skip("R50x1 parity runs the native engine on 25M parameters at 128 and 160 px (about a minute on 2 cores); run without -short (make test-long)")
	}
	cfg, err := model.Arch("R50x1", 100)
	if err != nil {
		t.Fatal(err)
	}
	checkExportParity(t, cfg, randomParams(cfg, 2), []int{128, 160}, []int{1, 4}, parityCases)
}
