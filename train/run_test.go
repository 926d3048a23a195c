package train

import (
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/bitrun/bitrun/data"
	"github.com/bitrun/bitrun/model"
)

// synth is a hermetic dataset: 28×28 gray images whose class is the position
// of a bright square, plus noise.
type synth struct {
	n, classes int
	seed       uint64
}

func (s synth) Len() int { return s.n }
func (s synth) Classes() []string {
	c := make([]string, s.classes)
	for i := range c {
		c[i] = string(rune('a' + i))
	}
	return c
}
func (s synth) Label(i int) int { return i % s.classes }
func (s synth) Image(i int) (image.Image, error) {
	rng := rand.New(rand.NewPCG(s.seed, uint64(i)))
	img := image.NewGray(image.Rect(0, 0, 28, 28))
	for j := range img.Pix {
		img.Pix[j] = uint8(rng.IntN(60))
	}
	c := s.Label(i)
	x0, y0 := 2+(c%3)*8, 2+(c/3)*8
	for y := y0; y < y0+7; y++ {
		for x := x0; x < x0+7; x++ {
			img.SetGray(x, y, color.Gray{Y: 255})
		}
	}
	return img, nil
}

func sameWeights(t *testing.T, a, b string) {
	t.Helper()
	pa, err := model.LoadNPZ(a)
	if err != nil {
		t.Fatal(err)
	}
	pb, err := model.LoadNPZ(b)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(pa.Names(), pb.Names()) {
		t.Fatalf("different parameter names")
	}
	for _, k := range pa.Names() {
		if !slices.Equal(pa[k].Data, pb[k].Data) {
			t.Fatalf("%s differs between the uninterrupted and the resumed run", k)
		}
	}
}

// TestKillAndResume: a run cancelled at step k and resumed ends with weights
// bit-identical to an uninterrupted run with the same seed (data order,
// augmentation and MixUp are pure functions of (seed, step); momentum buffers
// are checkpointed; every reduction has a fixed order).
func TestKillAndResume(t *testing.T) {
	ds := synth{n: 40, classes: 4, seed: 1}
	opts := DefaultOptions()
	opts.Arch, opts.Steps, opts.Batch, opts.BatchSplit = "tiny", 8, 8, 2
	opts.Resolution, opts.PreSize, opts.MixupAlpha, opts.Seed = 24, 28, 0.2, 42
	opts.CheckpointEvery = 3
	opts.EvalBatch = 16

	full := opts
	full.OutDir = filepath.Join(t.TempDir(), "full")
	sumFull, err := Run(context.Background(), full, ds, ds)
	if err != nil {
		t.Fatal(err)
	}

	killed := opts
	killed.OutDir = filepath.Join(t.TempDir(), "killed")
	ctx := interruptAt(&killed, 5)
	if _, err := Run(ctx, killed, ds, ds); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled run: err %v, want context.Canceled", err)
	}
	ck, err := readCheckpoint(killed.OutDir)
	if err != nil || ck.Step != 5 {
		t.Fatalf("checkpoint after cancel: %+v, %v; want step 5", ck, err)
	}
	if _, err := os.Stat(filepath.Join(killed.OutDir, WeightsFile)); err == nil {
		t.Fatal("a cancelled run wrote final weights")
	}
	// Without Resume the folder is refused.
	killed.Progress = nil
	if _, err := Run(context.Background(), killed, ds, ds); !errors.Is(err, ErrRunExists) {
		t.Fatalf("rerun without resume: err %v, want ErrRunExists", err)
	}
	// A different batch is refused on resume.
	bad := killed
	bad.Resume, bad.Batch = true, 4
	if _, err := Run(context.Background(), bad, ds, ds); !errors.Is(err, ErrResumeMismatch) {
		t.Fatalf("resume with another batch: err %v, want ErrResumeMismatch", err)
	}
	killed.Resume = true
	sumRes, err := Run(context.Background(), killed, ds, ds)
	if err != nil {
		t.Fatal(err)
	}
	if sumRes.ResumedAt != 5 {
		t.Errorf("resumed at %d, want 5", sumRes.ResumedAt)
	}
	sameWeights(t, filepath.Join(full.OutDir, WeightsFile), filepath.Join(killed.OutDir, WeightsFile))
	if sumRes.FinalLoss != sumFull.FinalLoss || sumRes.TestAccuracy != sumFull.TestAccuracy {
		t.Errorf("final loss/accuracy: resumed %g/%g, uninterrupted %g/%g", sumRes.FinalLoss, sumRes.TestAccuracy, sumFull.FinalLoss, sumFull.TestAccuracy)
	}
	if err := checkPNG(filepath.Join(killed.OutDir, CurveFile)); err != nil {
		t.Errorf("training curve: %v", err)
	}
	// metrics.jsonl holds each step once.
	b, err := os.ReadFile(filepath.Join(killed.OutDir, MetricsFile))
	if err != nil {
		t.Fatal(err)
	}
	if lines := len(slices.DeleteFunc(splitLines(b), func(s string) bool { return s == "" })); lines != 8 {
		t.Errorf("metrics.jsonl has %d lines, want 8", lines)
	}
	// Only the latest checkpoint's files remain.
	entries, _ := os.ReadDir(filepath.Join(killed.OutDir, CheckpointDir))
	if len(entries) != 2 {
		t.Errorf("checkpoint folder holds %d files, want 2 (weights + optimizer)", len(entries))
	}
}

// interruptAt cancels the run when it reports training step at.
func interruptAt(o *Options, at int) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	o.Progress = func(p Progress) {
		if p.Phase == "train" && p.Step == at {
			cancel()
		}
	}
	return ctx
}

func checkPNG(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	cfg, err := png.DecodeConfig(f)
	if err != nil {
		return err
	}
	if cfg.Width < 100 || cfg.Height < 100 {
		return fmt.Errorf("%dx%d picture", cfg.Width, cfg.Height)
	}
	return nil
}

func splitLines(b []byte) []string {
	var out []string
	start := 0
	for i, c := range b {
		if c == '\n' {
			out = append(out, string(b[start:i]))
			start = i + 1
		}
	}
	return append(out, string(b[start:]))
}

// TestOverfitFashionMNIST: a small BiT fits 64 real images to > 99% train
// accuracy.
func TestOverfitFashionMNIST(t *testing.T) {
	const dir = "/usr/share/datasets/fashion-mnist"
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("Fashion-MNIST not installed at %s (scripts/setup.sh installs it): %v", dir, err)
	}
	if testing.Short() {
		t.Skip("overfitting 64 images takes ~30 s on 2 cores; run without -short")
	}
	full, err := data.Open(dir, "train")
	if err != nil {
		t.Fatal(err)
	}
	ds := data.Subset(full, data.Shuffled(full.Len(), 1)[:64])
	opts := DefaultOptions()
	opts.Arch, opts.Steps, opts.Batch, opts.Resolution = "tiny", 60, 64, 32
	opts.Crop, opts.Flip, opts.WeightDecay, opts.LR, opts.Warmup = false, false, -1, 0.05, 5
	opts.OutDir = t.TempDir()
	sum, err := Run(context.Background(), opts, ds, ds)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("train accuracy %.4f after %d steps, final loss %.4f", sum.TestAccuracy, sum.Steps, sum.FinalLoss)
	if sum.TestAccuracy <= 0.99 {
		t.Errorf("train accuracy %.4f, want > 0.99", sum.TestAccuracy)
	}
}
