package eval

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"
)

// MaxTextConfusion is the largest class count whose confusion matrix
// WriteText prints; larger ones are left to JSON and the PNG.
const MaxTextConfusion = 20

func pct(r Ratio) string {
	if math.IsNaN(float64(r)) {
		return "-"
	}
	return fmt.Sprintf("%.2f%%", 100*float64(r))
}

// WriteText writes the report as a human-readable table.
func WriteText(w io.Writer, r *Report) error {
	var b strings.Builder
	fmt.Fprintf(&b, "model:       %s\n", r.Model)
	if r.Dataset != "" {
		fmt.Fprintf(&b, "data:        %s\n", r.Dataset)
	}
	p := r.Preprocess
	fmt.Fprintf(&b, "input:       %d×%d, %d channel(s), mean %v std %v\n", p.Size, p.Size, p.Channels, p.Mean, p.Std)
	fmt.Fprintf(&b, "images:      %d (batch %d)\n", r.Images, r.Batch)
	fmt.Fprintf(&b, "top-1:       %s\n", pct(r.Top1))
	fmt.Fprintf(&b, "top-%d:       %s\n", r.K, pct(r.TopK))
	t := r.Timing
	fmt.Fprintf(&b, "throughput:  %.1f images/s (%.2fs; inference %.2fs, waiting for data %.2fs, overhead %.1f%%)\n",
		t.ImagesPerSec, t.Seconds, t.InferenceSeconds, t.StallSeconds, 100*t.Overhead())
	b.WriteString("\nper-class accuracy:\n")
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "class\tlabel\timages\tcorrect\taccuracy\t")
	for _, c := range r.PerClass {
		if c.Count == 0 {
			continue
		}
		fmt.Fprintf(tw, "%d\t%s\t%d\t%d\t%s\t\n", c.Index, c.Label, c.Count, c.Correct, pct(c.Accuracy))
	}
	tw.Flush()
	n := len(r.Confusion)
	if n > MaxTextConfusion {
		fmt.Fprintf(&b, "\nconfusion matrix: %d×%d, too large to print (use --json or --plot)\n", n, n)
	} else if n > 0 {
		b.WriteString("\nconfusion matrix (rows: true class, columns: predicted class):\n")
		tw = tabwriter.NewWriter(&b, 0, 0, 1, ' ', tabwriter.AlignRight)
		fmt.Fprint(tw, "\t")
		for j := range n {
			fmt.Fprintf(tw, "%d\t", j)
		}
		fmt.Fprintln(tw)
		for i, row := range r.Confusion {
			fmt.Fprintf(tw, "%d\t", i)
			for _, v := range row {
				fmt.Fprintf(tw, "%d\t", v)
			}
			fmt.Fprintln(tw)
		}
		tw.Flush()
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteJSON writes the report as indented JSON.
func WriteJSON(w io.Writer, r *Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}
