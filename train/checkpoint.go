package train

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/bitrun/bitrun/internal/atomicfile"
	"github.com/bitrun/bitrun/model"
)

// Files of a run folder.
const (
	CheckpointFile = "checkpoint.json" // the latest complete checkpoint (written last)
	CheckpointDir  = "checkpoint"      // weights and optimiser state it points to
	MetricsFile    = "metrics.jsonl"   // one JSON object per step
	ConfigFile     = "config.json"     // options and architecture of the run
	SummaryFile    = "summary.json"    // written at the end
	WeightsFile    = "weights.npz"     // final weights
)

// ErrRunExists is returned when a run folder already holds a checkpoint and
// Resume is not set.
var ErrRunExists = errors.New("train: run folder already has a checkpoint (resume it or choose another folder)")

// ErrResumeMismatch is returned when --resume meets a checkpoint made with
// different options.
var ErrResumeMismatch = errors.New("train: checkpoint was made with different options")

// Checkpoint is the JSON record of a checkpoint. The RNG state is not stored
// as such: data order and augmentation are pure functions of (Seed, step), so
// Step and Seed determine it.
type Checkpoint struct {
	Step      int    `json:"step"` // completed steps
	Seed      uint64 `json:"seed"`
	Run       runKey `json:"run"`
	Weights   string `json:"weights"`             // relative to the run folder
	Optimizer string `json:"optimizer,omitempty"` // momentum buffers (.npz), relative
	RNG       string `json:"rng"`
}

// runKey is what must not change between a run and its resumption.
type runKey struct {
	Arch        string  `json:"arch"`
	Classes     int     `json:"classes"`
	Steps       int     `json:"steps"`
	Batch       int     `json:"batch"`
	Resolution  int     `json:"resolution"`
	PreSize     int     `json:"pre_size"`
	Crop        bool    `json:"crop"`
	Flip        bool    `json:"flip"`
	LR          float64 `json:"lr"`
	Warmup      int     `json:"warmup"`
	Momentum    float64 `json:"momentum"`
	WeightDecay float64 `json:"weight_decay"`
	MixupAlpha  float64 `json:"mixup_alpha"`
	Freeze      string  `json:"freeze"`
	Examples    int     `json:"examples"`
	Decays      string  `json:"decays,omitempty"` // explicit decay steps, "200,300,400" (comparable)
	Replacement bool    `json:"replacement,omitempty"`
}

func writeJSONAtomic(path string, v any) error {
	if err := atomicfile.WriteJSON(path, v); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	return nil
}

// writeAtomic replaces path with b atomically (temp file, sync, rename).
func writeAtomic(path string, b []byte) error {
	if err := atomicfile.Write(path, b); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	return nil
}

// saveCheckpoint writes weights and momentum buffers under new names, then
// the checkpoint record that points to them (atomically), then removes the
// previous checkpoint's files. A crash at any point leaves a complete
// checkpoint.
func saveCheckpoint(dir string, ck Checkpoint, params, velocity model.Params) error {
	if err := os.MkdirAll(filepath.Join(dir, CheckpointDir), 0o755); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	old, _ := readCheckpoint(dir)
	ck.Weights = filepath.Join(CheckpointDir, fmt.Sprintf("weights-%08d.npz", ck.Step))
	if err := model.SaveNPZ(filepath.Join(dir, ck.Weights), params); err != nil {
		return fmt.Errorf("train: checkpoint: %w", err)
	}
	ck.Optimizer = ""
	if len(velocity) > 0 {
		ck.Optimizer = filepath.Join(CheckpointDir, fmt.Sprintf("optimizer-%08d.npz", ck.Step))
		if err := model.SaveNPZ(filepath.Join(dir, ck.Optimizer), velocity); err != nil {
			return fmt.Errorf("train: checkpoint: %w", err)
		}
	}
	ck.RNG = "derived: data order and augmentation are pure functions of (seed, step)"
	if err := writeJSONAtomic(filepath.Join(dir, CheckpointFile), ck); err != nil {
		return err
	}
	if old != nil {
		for _, f := range []string{old.Weights, old.Optimizer} {
			if f != "" && f != ck.Weights && f != ck.Optimizer {
				os.Remove(filepath.Join(dir, f))
			}
		}
	}
	return nil
}

// readCheckpoint returns the run folder's checkpoint record, or nil and an
// error wrapping fs.ErrNotExist when there is none.
func readCheckpoint(dir string) (*Checkpoint, error) {
	b, err := os.ReadFile(filepath.Join(dir, CheckpointFile))
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	var ck Checkpoint
	if err := json.Unmarshal(b, &ck); err != nil {
		return nil, fmt.Errorf("train: %s: %w", CheckpointFile, err)
	}
	return &ck, nil
}

// loadCheckpoint reads the weights and momentum buffers a record points to.
func loadCheckpoint(dir string, ck *Checkpoint) (params, velocity model.Params, err error) {
	params, err = model.LoadNPZ(filepath.Join(dir, ck.Weights))
	if err != nil {
		return nil, nil, fmt.Errorf("train: checkpoint weights: %w", err)
	}
	velocity = model.Params{}
	if ck.Optimizer != "" {
		velocity, err = model.LoadNPZ(filepath.Join(dir, ck.Optimizer))
		if err != nil {
			return nil, nil, fmt.Errorf("train: checkpoint optimizer: %w", err)
		}
	}
	return params, velocity, nil
}

// HasCheckpoint reports whether dir holds a checkpoint record.
func HasCheckpoint(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, CheckpointFile))
	return !errors.Is(err, fs.ErrNotExist)
}

// trimMetrics keeps only the metric lines of steps <= step (a killed run may
// have logged steps after its last checkpoint) and drops a torn last line.
func trimMetrics(path string, step int) error {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	var out bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<16), 1<<24)
	for sc.Scan() {
		var m struct {
			Step *int `json:"step"`
		}
		if json.Unmarshal(sc.Bytes(), &m) != nil || m.Step == nil || *m.Step > step {
			continue
		}
		out.Write(sc.Bytes())
		out.WriteByte('\n')
	}
	return writeAtomic(path, out.Bytes())
}
