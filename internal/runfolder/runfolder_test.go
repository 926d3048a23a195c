package runfolder

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"

	"github.com/bitrun/bitrun/internal/regfile"
	"github.com/bitrun/bitrun/model"
	"github.com/bitrun/bitrun/nn"
)

// TestOpenMetricsResume: a resumed run keeps the lines of steps up to its
// checkpoint; lines of later steps, a torn last line and lines without a
// "step" (which train dropped and finetune kept as step 0 before the two
// shared this code) are dropped; a new run starts the file afresh.
func TestOpenMetricsResume(t *testing.T) {
	for _, tc := range []struct {
		name  string
		from  int
		lines []string
		want  []int
	}{
		{"resume", 2, []string{`{"step":1,"loss":2}`, `{"step":2,"loss":1}`, `{"step":3,"loss":0.5}`}, []int{1, 2}},
		{"torn last line", 2, []string{`{"step":1}`, `{"step":2}`, `{"step":3,"lo`}, []int{1, 2}},
		{"no step field", 5, []string{`{"loss":1}`, `{"step":1}`, `null`, `{}`, `{"step":2}`}, []int{1, 2}},
		{"step not a number", 5, []string{`{"step":"1"}`, `{"step":2}`}, []int{2}},
		{"new run", 0, []string{`{"step":1}`, `{"step":2}`}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, MetricsFile)
			if err := os.WriteFile(path, []byte(strings.Join(tc.lines, "\n")), 0o644); err != nil {
				t.Fatal(err)
			}
			w, err := OpenMetrics(dir, tc.from)
			if err != nil {
				t.Fatal(err)
			}
			if err := w.Append(Metric{Step: tc.from + 1, Loss: 0.25}); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil || w.Close() != nil {
				t.Fatalf("close: %v", err)
			}
			ms, err := ReadMetrics(path)
			if err != nil {
				t.Fatal(err)
			}
			var got []int
			for _, m := range ms {
				got = append(got, m.Step)
			}
			want := append(tc.want, tc.from+1)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("steps %v, want %v", got, want)
			}
		})
	}
}

// TestOpenMetricsResumeWithoutFile: resuming a run whose metrics file is
// gone starts a new one.
func TestOpenMetricsResumeWithoutFile(t *testing.T) {
	dir := t.TempDir()
	w, err := OpenMetrics(dir, 3)
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	if ms, err := ReadMetrics(filepath.Join(dir, MetricsFile)); err != nil || len(ms) != 0 {
		t.Fatalf("%v, %v", ms, err)
	}
}

// TestSaveCheckpoint: the new files and record are written, the previous
// record's files go, and a file both records name stays.
func TestSaveCheckpoint(t *testing.T) {
	type rec struct {
		Step    int    `json:"step"`
		Weights string `json:"weights"`
		Shared  string `json:"shared"`
	}
	dir := t.TempDir()
	p := model.Params{"w": nn.New(2)}
	save := func(step int) rec {
		r := rec{Step: step, Weights: CheckpointName("w", step), Shared: CheckpointName("shared", 0)}
		if err := SaveCheckpoint(dir, []NPZ{{r.Weights, p}, {r.Shared, p}}, r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	if HasCheckpoint(dir) {
		t.Fatal("empty folder has a checkpoint")
	}
	var none rec
	if err := ReadCheckpoint(dir, &none); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("no record: %v", err)
	}
	first := save(1)
	// A save killed after its payload, before its record, left an orphan;
	// the next save removes it (and leaves files that are not .npz alone).
	orphan := filepath.Join(dir, CheckpointName("w", 99))
	if err := os.WriteFile(orphan, []byte("payload"), 0o644); err != nil {
		t.Fatal(err)
	}
	notes := filepath.Join(dir, CheckpointDir, "notes.txt")
	if err := os.WriteFile(notes, []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	second := save(2)
	if _, err := os.Stat(orphan); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("orphaned payload %s kept (%v)", orphan, err)
	}
	if err := os.Remove(notes); err != nil {
		t.Errorf("a file that is not a checkpoint payload was removed: %v", err)
	}
	var got rec
	if err := ReadCheckpoint(dir, &got); err != nil || got != second {
		t.Fatalf("record %+v, %v; want %+v", got, err, second)
	}
	entries, _ := os.ReadDir(filepath.Join(dir, CheckpointDir))
	var names []string
	for _, e := range entries {
		names = append(names, filepath.Join(CheckpointDir, e.Name()))
	}
	if want := []string{second.Shared, second.Weights}; !reflect.DeepEqual(names, want) {
		t.Errorf("checkpoint folder %v, want %v (first weights %s removed)", names, want, first.Weights)
	}
}

// TestRemoveStaleTemps: temporary files of both folders go, nothing else.
func TestRemoveStaleTemps(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, CheckpointDir), 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]bool{ // path -> removed
		filepath.Join(dir, ".summary.json.1.tmp"):                  true,
		filepath.Join(dir, CheckpointDir, ".w-00000001.npz.2.tmp"): true,
		filepath.Join(dir, MetricsFile):                            false,
	}
	for f := range files {
		if err := os.WriteFile(f, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	removed, err := RemoveStaleTemps(dir)
	if err != nil || len(removed) != 2 {
		t.Fatalf("removed %v, %v", removed, err)
	}
	for f, gone := range files {
		if _, err := os.Stat(f); os.IsNotExist(err) != gone {
			t.Errorf("%s: removed %v, want %v", f, !gone, gone)
		}
	}
}

// TestMetricsUnreadable: a line over the limit, a file over
// MaxMetricsBytes or a FIFO is an error (ErrMetrics, or regfile's), and
// the resume leaves the file as it was instead of trimming it to the lines
// before the long one.
func TestMetricsUnreadable(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, MetricsFile)
	long := `{"step":1}` + "\n" + `{"step":2,"pad":"` + strings.Repeat("x", maxMetricLine) + `"}` + "\n" + `{"step":3}` + "\n"
	if err := os.WriteFile(path, []byte(long), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenMetrics(dir, 3); !errors.Is(err, ErrMetrics) || !strings.Contains(err.Error(), "after 1 metric lines") {
		t.Errorf("resume over a long line: %v, want ErrMetrics", err)
	}
	if b, _ := os.ReadFile(path); string(b) != long {
		t.Errorf("metrics rewritten: %d bytes, was %d", len(b), len(long))
	}
	if _, err := ReadMetrics(path); !errors.Is(err, ErrMetrics) {
		t.Errorf("read over a long line: %v", err)
	}
	if err := os.Truncate(path, MaxMetricsBytes+1); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadMetrics(path); !errors.Is(err, ErrMetrics) {
		t.Errorf("read of a file over %d bytes: %v", MaxMetricsBytes, err)
	}
	os.Remove(path)
	if err := syscall.Mkfifo(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenMetrics(dir, 3); !errors.Is(err, regfile.ErrNotRegular) {
		t.Errorf("resume over a FIFO: %v", err)
	}
}

// TestReadCheckpointStep: a record's step must be a count (0 or more), and
// CheckStep also bounds it by the run's steps.
func TestReadCheckpointStep(t *testing.T) {
	dir := t.TempDir()
	var rec struct {
		Step int `json:"step"`
	}
	for body, ok := range map[string]bool{`{"step":3}`: true, `{"step":0}`: true, `{"step":-3}`: false, `{"weights":"x"}`: false, `{"step":"3"}`: false} {
		if err := os.WriteFile(filepath.Join(dir, CheckpointFile), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := ReadCheckpoint(dir, &rec); (err == nil) != ok || (!ok && !errors.Is(err, ErrBadCheckpoint) && !strings.Contains(err.Error(), "cannot unmarshal")) {
			t.Errorf("%s: %v, want ok=%v", body, err, ok)
		}
	}
	if err := CheckStep(dir, 5, 4); !errors.Is(err, ErrBadCheckpoint) || !strings.Contains(err.Error(), "want 0 to 4") {
		t.Errorf("step 5 of 4: %v", err)
	}
	if err := CheckStep(dir, 4, 4); err != nil {
		t.Errorf("step 4 of 4: %v", err)
	}
}
