// Package runfolder is the one writer of a training run folder, shared by
// train and finetune: the metrics log (metrics.jsonl, appended per step and
// trimmed on resume), checkpoint records (checkpoint.json pointing at files
// in checkpoint/, written files first, record last), atomic JSON files and
// the removal of temporary files a killed run left behind. Every file goes
// through internal/atomicfile.
//
// What a record holds is the caller's: train and finetune each define their
// own checkpoint.json; this package only writes and reads it as JSON and
// checks the file names it gives.
package runfolder

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/bitrun/bitrun/internal/atomicfile"
	"github.com/bitrun/bitrun/internal/regfile"
	"github.com/bitrun/bitrun/model"
)

// Files of a run folder that this package writes.
const (
	CheckpointFile = "checkpoint.json" // the latest complete checkpoint (written last)
	CheckpointDir  = "checkpoint"      // files it points to
	MetricsFile    = "metrics.jsonl"   // one Metric per line
)

// ErrBadCheckpoint is wrapped when checkpoint.json names a file that is not
// a plain file name inside the run's checkpoint folder (a path leading out of
// the run folder, a link, a FIFO), or a step outside the run: such a record
// is refused, and nothing it names is read or removed.
var ErrBadCheckpoint = errors.New("train: bad checkpoint record")

// CheckpointPath resolves name, a file named by a checkpoint record, inside
// the run folder dir: name must be CheckpointDir + "/" + a plain file name
// (no other separators, no "." or ".."), and when the file exists it must
// be a regular file, not a link or a device. Errors wrap ErrBadCheckpoint.
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
// rename), logging nothing; it returns their paths.
func RemoveStaleTemps(dir string) ([]string, error) {
	var all []string
	for _, d := range []string{dir, filepath.Join(dir, CheckpointDir)} {
		removed, err := atomicfile.RemoveTemps(d)
		if err != nil {
			return all, fmt.Errorf("runfolder: removing stale temporary files: %w", err)
		}
		for _, n := range removed {
			all = append(all, filepath.Join(d, n))
		}
	}
	return all, nil
}

// HasCheckpoint reports whether dir holds a checkpoint record.
func HasCheckpoint(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, CheckpointFile))
	return !errors.Is(err, fs.ErrNotExist)
}

// ReadCheckpoint decodes dir's checkpoint record into rec. Its "step"
// (completed steps) must be a count, 0 or more: anything else is a damaged
// record (ErrBadCheckpoint), refused before a resume touches the metrics or
// indexes data by it; whether the step lies within the run is the caller's
// check (CheckStep). Without a record the error wraps fs.ErrNotExist.
func ReadCheckpoint(dir string, rec any) error {
	f, err := regfile.Open(filepath.Join(dir, CheckpointFile))
	if err != nil {
		return fmt.Errorf("runfolder: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxRecord+1))
	if err != nil {
		return fmt.Errorf("runfolder: %w", err)
	}
	if len(b) > maxRecord {
		return fmt.Errorf("%w: %s is over %d KiB", ErrBadCheckpoint, filepath.Join(dir, CheckpointFile), maxRecord>>10)
	}
	if err := json.Unmarshal(b, rec); err != nil {
		return fmt.Errorf("runfolder: %s: %w", CheckpointFile, err)
	}
	var at struct {
		Step *int `json:"step"`
	}
	if json.Unmarshal(b, &at) != nil || at.Step == nil {
		return fmt.Errorf("%w: %s has no step: restore it or start a new run folder", ErrBadCheckpoint, filepath.Join(dir, CheckpointFile))
	}
	return CheckStep(dir, *at.Step, -1)
}

// CheckStep refuses a checkpoint record's step below 0 or, when steps >= 0,
// beyond the run's steps (ErrBadCheckpoint).
func CheckStep(dir string, step, steps int) error {
	if step >= 0 && (steps < 0 || step <= steps) {
		return nil
	}
	want := "0 or more"
	if steps >= 0 {
		want = "0 to " + strconv.Itoa(steps)
	}
	return fmt.Errorf("%w: %s: step %d, want %s completed steps: the record is damaged; restore it or start a new run folder",
		ErrBadCheckpoint, filepath.Join(dir, CheckpointFile), step, want)
}

// NPZ is one file of a checkpoint: Params saved as .npz at Name, a path
// relative to the run folder inside CheckpointDir (see CheckpointName).
type NPZ struct {
	Name   string
	Params model.Params
}

// CheckpointName is the name, relative to the run folder, of the file
// prefix-STEP.npz in the checkpoint folder.
func CheckpointName(prefix string, step int) string {
	return filepath.Join(CheckpointDir, fmt.Sprintf("%s-%08d.npz", prefix, step))
}

// SaveCheckpoint writes files, then rec (which names them) as the run's
// checkpoint record, then removes every other .npz of the checkpoint folder:
// the previous record's files and the payload of a save killed before its
// record was written. Nothing outside the folder is touched, whatever a
// previous record named. Each write is atomic and the record is written
// last, so a crash at any point leaves a complete checkpoint.
func SaveCheckpoint(dir string, files []NPZ, rec any) error {
	if err := os.MkdirAll(filepath.Join(dir, CheckpointDir), 0o755); err != nil {
		return fmt.Errorf("runfolder: %w", err)
	}
	keep := make([]string, len(files))
	for i, f := range files {
		if err := model.SaveNPZ(filepath.Join(dir, f.Name), f.Params); err != nil {
			return fmt.Errorf("runfolder: checkpoint: %w", err)
		}
		keep[i] = f.Name
	}
	if err := WriteJSON(filepath.Join(dir, CheckpointFile), rec); err != nil {
		return err
	}
	removeOrphans(dir, keep)
	return nil
}

// removeOrphans removes the regular .npz files of dir's checkpoint folder
// that keep does not name.
func removeOrphans(dir string, keep []string) {
	entries, err := os.ReadDir(filepath.Join(dir, CheckpointDir))
	if err != nil {
		return
	}
	for _, e := range entries {
		name := filepath.Join(CheckpointDir, e.Name())
		if !e.Type().IsRegular() || filepath.Ext(e.Name()) != ".npz" || slices.Contains(keep, name) {
			continue
		}
		os.Remove(filepath.Join(dir, name))
	}
}

// WriteJSON replaces path atomically with v as indented JSON.
func WriteJSON(path string, v any) error {
	if err := atomicfile.WriteJSON(path, v); err != nil {
		return fmt.Errorf("runfolder: %w", err)
	}
	return nil
}

// Write replaces path atomically with b.
func Write(path string, b []byte) error {
	if err := atomicfile.Write(path, b); err != nil {
		return fmt.Errorf("runfolder: %w", err)
	}
	return nil
}

// The bounds of a metrics.jsonl read back (resume, plots): about 1.7M
// steps of about 150 bytes, and lines far longer than any Metric.
const (
	MaxMetricsBytes = 256 << 20
	maxMetricLine   = 1 << 20
	maxRecord       = 1 << 20 // checkpoint.json: a few hundred bytes
)

// ErrMetrics is wrapped when a run's metrics.jsonl cannot be read back
// whole: not a regular file, over MaxMetricsBytes, a line over the limit.
var ErrMetrics = errors.New("runfolder: unreadable metrics")

// Metric is one line of metrics.jsonl: the state after a training step.
type Metric struct {
	Step         int     `json:"step"` // completed steps, from 1
	Epoch        float64 `json:"epoch"`
	Loss         float64 `json:"loss"`
	BatchAcc     float64 `json:"batch_acc"`
	LR           float64 `json:"lr"`
	ImagesPerSec float64 `json:"images_per_s"`
	Elapsed      float64 `json:"elapsed_s"`
}

// Metrics appends to a run's metrics.jsonl.
type Metrics struct {
	f *os.File
}

// OpenMetrics opens dir's metrics.jsonl for a run that goes on after step
// from: from <= 0 (a new run) starts the file afresh; a resumed run keeps
// only the lines of steps up to from (a killed run may have logged steps
// after its last checkpoint), see ReadMetrics for which lines count.
func OpenMetrics(dir string, from int) (*Metrics, error) {
	path := filepath.Join(dir, MetricsFile)
	if from <= 0 {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("runfolder: %w", err)
		}
	} else if err := trimMetrics(path, from); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, fmt.Errorf("runfolder: %w", err)
	}
	return &Metrics{f: f}, nil
}

// Append writes m as one line.
func (w *Metrics) Append(m Metric) error {
	line, err := json.Marshal(m)
	if err == nil {
		_, err = w.f.Write(append(line, '\n'))
	}
	if err != nil {
		return fmt.Errorf("runfolder: metrics: %w", err)
	}
	return nil
}

// Close closes the file; it is idempotent.
func (w *Metrics) Close() error {
	if w.f == nil {
		return nil
	}
	err := w.f.Close()
	w.f = nil
	return err
}

// ReadMetrics returns the metric lines of a metrics.jsonl file in order. A
// line counts when it is a JSON object with a numeric "step": a torn last
// line of a killed run, or any other line without a step, is skipped, not
// read as step 0 (no step 0 is ever logged, and a point at step 0 with zero
// loss would be plotted and kept by a resume as if it were real).
func ReadMetrics(path string) ([]Metric, error) {
	ms, _, err := readMetrics(path, -1)
	return ms, err
}

// readMetrics returns the metric lines of path up to step upTo (all when
// upTo < 0) and their raw bytes.
func readMetrics(path string, upTo int) ([]Metric, []byte, error) {
	f, err := regfile.Open(path) // a FIFO does not block the resume
	if err != nil {
		return nil, nil, fmt.Errorf("runfolder: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("runfolder: %w", err)
	}
	if st.Size() > MaxMetricsBytes {
		return nil, nil, fmt.Errorf("%w: %s is over %d MiB: move it aside to resume or plot", ErrMetrics, path, MaxMetricsBytes>>20)
	}
	var ms []Metric
	var raw bytes.Buffer
	sc := bufio.NewScanner(io.LimitReader(f, MaxMetricsBytes))
	sc.Buffer(make([]byte, 1<<16), maxMetricLine)
	for sc.Scan() {
		var m struct {
			Metric
			Step *int `json:"step"`
		}
		if json.Unmarshal(sc.Bytes(), &m) != nil || m.Step == nil || (upTo >= 0 && *m.Step > upTo) {
			continue
		}
		m.Metric.Step = *m.Step
		ms = append(ms, m.Metric)
		raw.Write(sc.Bytes())
		raw.WriteByte('\n')
	}
	if err := sc.Err(); err != nil {
		// A line past the limit (bufio.ErrTooLong) or a read error: the
		// lines after it are unknown, so nothing is trimmed or plotted.
		return nil, nil, fmt.Errorf("%w: %s after %d metric lines: %w (lines hold at most %d KiB)", ErrMetrics, path, len(ms), err, maxMetricLine>>10)
	}
	return ms, raw.Bytes(), nil
}

// trimMetrics rewrites path with only the metric lines of steps <= step; a
// missing file is left missing.
func trimMetrics(path string, step int) error {
	_, raw, err := readMetrics(path, step)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return Write(path, raw)
}
