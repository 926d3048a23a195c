package finetune

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"
)

// ONNXEvalFile is where a run folder may keep the JSON report of
// `bitrun eval --onnx RUNDIR/model.onnx --json`; Table shows its top-1.
const ONNXEvalFile = "eval-onnx.json"

// Row is one run of a results table.
type Row struct {
	Name    string
	Summary *Summary // nil when the run is unfinished
	// Unfinished says why a run folder (it holds RuleFile) has no results
	// yet: no summary.json, or only the training summary an interrupted
	// full fine-tuning leaves. "" for finished runs.
	Unfinished string
	// ONNXTop1 is the top-1 of the exported model evaluated by ONNX Runtime
	// (from ONNXEvalFile); NaN when the folder has none.
	ONNXTop1 float64
}

// LoadRow reads summary.json (and eval-onnx.json when present) of a run
// folder. The row is named after the folder.
//
// A run folder (one holding RuleFile) without a fine-tuning summary is an
// unfinished run: its row has Unfinished set and no error, so a table over
// several runs still prints. A folder that is no run at all is an error.
func LoadRow(dir string) (Row, error) {
	r := Row{Name: filepath.Base(filepath.Clean(dir)), ONNXTop1: math.NaN()}
	_, ruleErr := os.Stat(filepath.Join(dir, RuleFile))
	isRun := ruleErr == nil
	b, err := os.ReadFile(filepath.Join(dir, "summary.json"))
	if errors.Is(err, fs.ErrNotExist) && isRun {
		r.Unfinished = "no summary.json yet (interrupted? resume it with --resume)"
		return r, nil
	}
	if err != nil {
		return r, fmt.Errorf("finetune: %w", err)
	}
	var s Summary
	if err := json.Unmarshal(b, &s); err != nil {
		return r, fmt.Errorf("finetune: %s: %w", filepath.Join(dir, "summary.json"), err)
	}
	if s.Run.Mode == "" {
		if isRun {
			// Full fine-tuning trains with package train, whose summary
			// lands first; the fine-tuning summary replaces it at the end.
			r.Unfinished = "training summary only (interrupted before the final evaluation? resume it with --resume)"
			return r, nil
		}
		return r, fmt.Errorf("finetune: %s is not a fine-tuning run summary", filepath.Join(dir, "summary.json"))
	}
	r.Summary = &s
	if b, err := os.ReadFile(filepath.Join(dir, ONNXEvalFile)); err == nil {
		var rep struct {
			Top1 *float64 `json:"top1"`
		}
		if err := json.Unmarshal(b, &rep); err != nil {
			return r, fmt.Errorf("finetune: %s: %w", filepath.Join(dir, ONNXEvalFile), err)
		}
		if rep.Top1 != nil {
			r.ONNXTop1 = *rep.Top1
		}
	}
	return r, nil
}

// WriteTable prints rows as an aligned text table: mode, source, shots,
// steps, resolutions, native test top-1 at the train resolution, the
// adaptation's before and after at its resolution, the exported model's
// native and ONNX Runtime top-1, and the training time.
func WriteTable(w io.Writer, rows []Row) error {
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "run\tmode\tsource\tshots\tsteps\tbatch\ttrain res\ttop-1\tadapt res\tbefore\tafter\tfinal top-1\tonnx top-1\ttrain time\t")
	pct := func(v float64) string {
		if math.IsNaN(v) {
			return "-"
		}
		return fmt.Sprintf("%.2f%%", 100*v)
	}
	for _, r := range rows {
		s := r.Summary
		if s == nil {
			fmt.Fprintf(tw, "%s\tunfinished: %s\t\n", r.Name, r.Unfinished)
			continue
		}
		shots := "all"
		if s.Run.ExamplesPerClass > 0 {
			shots = fmt.Sprintf("%d/class", s.Run.ExamplesPerClass)
		}
		src := s.Run.Source
		if src == "" {
			src = "-"
		} else {
			src = shortSource(src)
		}
		adaptRes, before, after := "-", "-", "-"
		if s.Adapt != nil {
			adaptRes, before, after = fmt.Sprint(s.Adapt.Resolution), pct(s.Adapt.Top1Before), pct(s.Adapt.Top1After)
		}
		mode := s.Run.Mode
		if s.Run.Mode == ModeHead && s.Engine != "" {
			mode += " (" + s.Engine + ")"
		}
		train := time.Duration((s.TrainSeconds + s.CacheSeconds) * float64(time.Second)).Round(time.Second)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", r.Name, mode, src, shots,
			s.Steps, s.Run.Batch, s.TrainRes, pct(s.Top1), adaptRes, before, after, pct(s.FinalTop1), pct(r.ONNXTop1), train)
	}
	return tw.Flush()
}

// shortSource names a source checkpoint by its run folder or file name.
func shortSource(path string) string {
	base := filepath.Base(path)
	if base == "weights.npz" {
		return filepath.Base(filepath.Dir(path))
	}
	return strings.TrimSuffix(base, ".npz")
}
