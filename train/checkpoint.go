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
	"reflect"
	"slices"
	"strings"

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

// ErrDiverged is wrapped when the training loss turns NaN or ±Inf: training
// stops there, before a non-finite checkpoint or result is written.
var ErrDiverged = errors.New("train: loss diverged")

// ErrBadCheckpoint is wrapped when checkpoint.json names a file that is not
// a plain file name inside the run's checkpoint folder (a path leading out of
// the run folder, a link, a FIFO): such a record is refused, and nothing it
// names is read or removed.
var ErrBadCheckpoint = errors.New("train: bad checkpoint record")

// CheckpointPath resolves name, a file named by a checkpoint record, inside
// the run folder dir: name must be CheckpointDir + "/" + a plain file name
// (no other separators, no "." or ".."), and when the file exists it must
// be a regular file, not a link or a device. Errors wrap ErrBadCheckpoint.
// Train and finetune records both go through it.
func CheckpointPath(dir, name string) (string, error) {
	sub, base, ok := strings.Cut(filepath.ToSlash(name), "/")
	if !ok || sub != CheckpointDir || base == "" || base == "." || base == ".." ||
		strings.ContainsAny(base, "/\\") || strings.ContainsRune(base, 0) {
		return "", fmt.Errorf("%w: %s names %q; want %s/<file name> inside the run folder", ErrBadCheckpoint, CheckpointFile, name, CheckpointDir)
	}
	p := filepath.Join(dir, CheckpointDir, base)
	fi, err := os.Lstat(p)
	if err == nil && !fi.Mode().IsRegular() {
		return "", fmt.Errorf("%w: %s is not a regular file (%v)", ErrBadCheckpoint, p, fi.Mode().Type())
	}
	if dfi, err := os.Lstat(filepath.Join(dir, CheckpointDir)); err == nil && !dfi.IsDir() {
		return "", fmt.Errorf("%w: %s is not a folder (%v)", ErrBadCheckpoint, filepath.Join(dir, CheckpointDir), dfi.Mode().Type())
	}
	return p, nil
}

// RemoveStaleTemps removes the temporary files a killed run left in its
// folder and checkpoint folder (atomic writes that never reached their
// rename), logging nothing; it returns their names.
func RemoveStaleTemps(dir string) ([]string, error) {
	var all []string
	for _, d := range []string{dir, filepath.Join(dir, CheckpointDir)} {
		removed, err := atomicfile.RemoveTemps(d)
		if err != nil {
			return all, fmt.Errorf("train: removing stale temporary files: %w", err)
		}
		for _, n := range removed {
			all = append(all, filepath.Join(d, n))
		}
	}
	return all, nil
}

// RemoveCheckpointFiles removes the files an old record named, skipping
// any name CheckpointPath refuses and those still in use (keep).
func RemoveCheckpointFiles(dir string, old []string, keep ...string) {
	for _, f := range old {
		if f == "" || slices.Contains(keep, f) {
			continue
		}
		if p, err := CheckpointPath(dir, f); err == nil {
			os.Remove(p)
		}
	}
}

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
		RemoveCheckpointFiles(dir, []string{old.Weights, old.Optimizer}, ck.Weights, ck.Optimizer)
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
	wp, err := CheckpointPath(dir, ck.Weights)
	if err != nil {
		return nil, nil, err
	}
	op := ""
	if ck.Optimizer != "" {
		if op, err = CheckpointPath(dir, ck.Optimizer); err != nil {
			return nil, nil, err
		}
	}
	params, err = model.LoadNPZ(wp)
	if err != nil {
		return nil, nil, fmt.Errorf("train: checkpoint weights: %w", err)
	}
	velocity = model.Params{}
	if op != "" {
		velocity, err = model.LoadNPZ(op)
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

// keyDiff lists the fields in which two run keys (and seeds) differ, as
// "json_name: old -> new".
func keyDiff(a runKey, seedA uint64, b runKey, seedB uint64) []string {
	var out []string
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	for i := 0; i < va.NumField(); i++ {
		fa, fb := va.Field(i).Interface(), vb.Field(i).Interface()
		if fa != fb {
			name := strings.Split(va.Type().Field(i).Tag.Get("json"), ",")[0]
			out = append(out, fmt.Sprintf("%s: %v -> %v", name, fa, fb))
		}
	}
	if seedA != seedB {
		out = append(out, fmt.Sprintf("seed: %d -> %d", seedA, seedB))
	}
	return out
}
