package train

import (
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/bitrun/bitrun/internal/runfolder"
	"github.com/bitrun/bitrun/model"
)

// Files of a run folder.
const (
	CheckpointFile = runfolder.CheckpointFile // the latest complete checkpoint (written last)
	CheckpointDir  = runfolder.CheckpointDir  // weights and optimiser state it points to
	MetricsFile    = runfolder.MetricsFile    // one JSON object per step
	ConfigFile     = "config.json"            // options and architecture of the run
	SummaryFile    = "summary.json"           // written at the end
	WeightsFile    = "weights.npz"            // final weights
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
// names is read or removed. Train and finetune records both go through
// CheckpointPath.
var ErrBadCheckpoint = runfolder.ErrBadCheckpoint

// CheckpointPath resolves name, a file named by a checkpoint record, inside
// the run folder dir: name must be CheckpointDir + "/" + a plain file name
// (no other separators, no "." or ".."), and when the file exists it must
// be a regular file, not a link or a device. Errors wrap ErrBadCheckpoint.
func CheckpointPath(dir, name string) (string, error) { return runfolder.CheckpointPath(dir, name) }

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

// saveCheckpoint writes weights and momentum buffers under new names, then
// the checkpoint record that points to them, then removes the previous
// checkpoint's files (runfolder.SaveCheckpoint): a crash at any point leaves
// a complete checkpoint.
func saveCheckpoint(dir string, ck Checkpoint, params, velocity model.Params) error {
	ck.Weights = runfolder.CheckpointName("weights", ck.Step)
	files := []runfolder.NPZ{{Name: ck.Weights, Params: params}}
	ck.Optimizer = ""
	if len(velocity) > 0 {
		ck.Optimizer = runfolder.CheckpointName("optimizer", ck.Step)
		files = append(files, runfolder.NPZ{Name: ck.Optimizer, Params: velocity})
	}
	ck.RNG = "derived: data order and augmentation are pure functions of (seed, step)"
	if err := runfolder.SaveCheckpoint(dir, files, ck); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	return nil
}

// readCheckpoint returns the run folder's checkpoint record, or nil and an
// error wrapping fs.ErrNotExist when there is none.
func readCheckpoint(dir string) (*Checkpoint, error) {
	var ck Checkpoint
	if err := runfolder.ReadCheckpoint(dir, &ck); err != nil {
		return nil, fmt.Errorf("train: %w", err)
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
func HasCheckpoint(dir string) bool { return runfolder.HasCheckpoint(dir) }

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
