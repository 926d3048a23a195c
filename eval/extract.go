package eval

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/bitrun/bitrun/data"
	"github.com/bitrun/bitrun/internal/atomicfile"
	"github.com/bitrun/bitrun/model"
	"github.com/bitrun/bitrun/nn"
	"github.com/bitrun/bitrun/runtime"
)

// FeaturesOutput is the output of bitrun's BiT exports holding the
// pre-logits: the head's pooled features, before the final dense layer.
const FeaturesOutput = "features"

// ExtractOptions configures Extract. The zero value takes the "features"
// output of every example in batches of DefaultBatch.
type ExtractOptions struct {
	Batch  int    // examples per batch; 0 = DefaultBatch
	Limit  int    // only the first Limit examples; 0 = all
	Output string // the model output to keep; "" = FeaturesOutput
	Shard  Shard  // when set (Count > 0), only that 1/Count of the examples
	// Progress, when set, is called after each batch with the examples done
	// and the total of the shard.
	Progress func(done, total int)
}

// FeaturesManifest describes a features file: where the rows came from,
// enough to refuse merging shards of different runs.
type FeaturesManifest struct {
	Model       string     `json:"model"`
	ModelSHA256 string     `json:"model_sha256,omitempty"`
	Dataset     string     `json:"dataset,omitempty"`
	Output      string     `json:"output"`
	Rows        int        `json:"rows"`
	Dim         int        `json:"dim"`
	Classes     []string   `json:"classes"`
	Preprocess  Preprocess `json:"preprocess"`
	Shard       *ShardInfo `json:"shard,omitempty"`
}

// Features are one model output for each example of a dataset (or shard):
// Data is Rows × Dim row-major, with each row's label and file name (the
// example's path for image folders, "#INDEX" for IDX datasets).
type Features struct {
	FeaturesManifest
	Data   []float32
	Labels []int64
	Files  []string
}

// Extract runs p on the examples of ds (preprocessed as pre) and keeps the
// output opts.Output of each, in dataset order.
func Extract(ctx context.Context, p *runtime.Predictor, pre Preprocess, ds data.Dataset, opts ExtractOptions) (*Features, error) {
	bs := cmp.Or(opts.Batch, DefaultBatch)
	if bs < 0 || bs > 1<<16 {
		return nil, fmt.Errorf("eval: batch size %d out of range [1, 65536]", bs)
	}
	out := opts.Output
	if out == "" {
		out = FeaturesOutput
	}
	if !slices.Contains(p.Info().Outputs, out) {
		return nil, fmt.Errorf("eval: the model has no output %q (outputs: %v); bitrun's exports have %q", out, p.Info().Outputs, FeaturesOutput)
	}
	if err := opts.Shard.Check(); err != nil {
		return nil, err
	}
	total := ds.Len()
	if opts.Limit > 0 {
		total = min(total, opts.Limit)
	}
	order := opts.Shard.Indices(total)
	if len(order) == 0 {
		return nil, fmt.Errorf("eval: nothing to extract (%d examples, shard %s)", total, opts.Shard)
	}
	paths, _ := ds.(interface{ Path(i int) string })
	f := &Features{FeaturesManifest: FeaturesManifest{Output: out, Classes: ds.Classes(), Preprocess: pre}}
	if opts.Shard.Sharded() {
		f.Shard = &ShardInfo{Shard: opts.Shard, Total: total}
	}
	per := pre.Channels * pre.Size * pre.Size
	buf := make([]float32, bs*per)
	for start := 0; start < len(order); start += bs {
		idx := order[start:min(start+bs, len(order))]
		x := buf[:len(idx)*per]
		if err := data.Batch(ds, idx, pre.Size, pre.Channels, pre.Norm, false, nil, x); err != nil {
			return nil, fmt.Errorf("eval: %w", err)
		}
		outs, err := p.Run(ctx, x, []int64{int64(len(idx)), int64(pre.Channels), int64(pre.Size), int64(pre.Size)})
		if err != nil {
			return nil, err
		}
		o := outs[out]
		if len(o.Shape) != 2 || int(o.Shape[0]) != len(idx) {
			return nil, fmt.Errorf("eval: output %q has shape %v; want [%d, D]", out, o.Shape, len(idx))
		}
		if f.Dim == 0 {
			f.Dim = int(o.Shape[1])
		}
		f.Data = append(f.Data, o.Data...)
		for _, i := range idx {
			f.Labels = append(f.Labels, int64(ds.Label(i)))
			if paths != nil {
				f.Files = append(f.Files, paths.Path(i))
			} else {
				f.Files = append(f.Files, "#"+strconv.Itoa(i))
			}
		}
		if opts.Progress != nil {
			opts.Progress(start+len(idx), len(order))
		}
	}
	f.Rows = len(f.Labels)
	return f, nil
}

// FeaturePaths are the files of a features set written at path (NAME.npy):
// NAME.npy (float32 [rows, dim]), NAME.labels.npy (int64 [rows]),
// NAME.files.txt (one file name per line) and NAME.json (the manifest).
func FeaturePaths(path string) (feats, labels, files, manifest string) {
	stem := strings.TrimSuffix(path, ".npy")
	return stem + ".npy", stem + ".labels.npy", stem + ".files.txt", stem + ".json"
}

// WriteFeatures writes f at path (see FeaturePaths), each file atomically;
// the manifest goes last, so a set with a manifest is complete.
func WriteFeatures(path string, f *Features) error {
	fp, lp, np, mp := FeaturePaths(path)
	for _, name := range f.Files {
		if strings.ContainsAny(name, "\n\r") {
			return fmt.Errorf("eval: file name %q holds a line break", name)
		}
	}
	write := func(path string, fill func(io.Writer) error) error {
		pf, err := atomicfile.Create(path)
		if err != nil {
			return err
		}
		defer pf.Cleanup()
		w := bufio.NewWriterSize(pf, 1<<20)
		if err := fill(w); err != nil {
			return err
		}
		if err := w.Flush(); err != nil {
			return err
		}
		return pf.Commit()
	}
	err := errors.Join(
		write(fp, func(w io.Writer) error { return model.WriteNPY(w, nn.FromData(f.Data, f.Rows, f.Dim)) }),
		write(lp, func(w io.Writer) error { return model.WriteNPYInt64(w, f.Labels) }),
		write(np, func(w io.Writer) error {
			for _, name := range f.Files {
				if _, err := io.WriteString(w, name+"\n"); err != nil {
					return err
				}
			}
			return nil
		}),
	)
	if err != nil {
		return fmt.Errorf("eval: writing features: %w", err)
	}
	if err := atomicfile.WriteJSON(mp, f.FeaturesManifest); err != nil {
		return fmt.Errorf("eval: writing features: %w", err)
	}
	return nil
}

// ReadFeatures reads a features set written by WriteFeatures.
func ReadFeatures(path string) (*Features, error) {
	fp, lp, np, mp := FeaturePaths(path)
	var f Features
	b, err := os.ReadFile(mp)
	if err != nil {
		return nil, fmt.Errorf("eval: features manifest: %w", err)
	}
	if err := json.Unmarshal(b, &f.FeaturesManifest); err != nil {
		return nil, fmt.Errorf("eval: features manifest %s: %w", mp, err)
	}
	r, err := os.Open(fp)
	if err != nil {
		return nil, fmt.Errorf("eval: %w", err)
	}
	t, err := model.ReadNPY(bufio.NewReader(r))
	r.Close()
	if err != nil {
		return nil, fmt.Errorf("eval: %s: %w", fp, err)
	}
	if !slices.Equal(t.Shape, []int{f.Rows, f.Dim}) {
		return nil, fmt.Errorf("eval: %s has shape %v; the manifest says [%d %d]", fp, t.Shape, f.Rows, f.Dim)
	}
	f.Data = t.Data
	lr, err := os.Open(lp)
	if err != nil {
		return nil, fmt.Errorf("eval: %w", err)
	}
	defer lr.Close()
	if f.Labels, err = model.ReadNPYInt64(lr, f.Rows); err != nil {
		return nil, fmt.Errorf("eval: %s: labels: %w", lp, err)
	}
	nb, err := os.ReadFile(np)
	if err != nil {
		return nil, fmt.Errorf("eval: %w", err)
	}
	f.Files = strings.Split(strings.TrimSuffix(string(nb), "\n"), "\n")
	if f.Rows == 0 {
		f.Files = nil
	}
	if len(f.Files) != f.Rows {
		return nil, fmt.Errorf("eval: %s has %d names for %d rows", np, len(f.Files), f.Rows)
	}
	return &f, nil
}

// MergeFeatures combines the features of every shard of one sharded
// extraction into those of the unsharded run, row for row (shard I holds
// the examples I, I+N, ...). It refuses shards of different models,
// datasets, outputs or shard counts, and a missing or duplicate shard
// (ErrShards).
func MergeFeatures(parts []*Features) (*Features, error) {
	if err := checkParts(parts); err != nil {
		return nil, err
	}
	a := parts[0]
	byIndex := make([]*Features, len(parts))
	rows := 0
	for _, p := range parts {
		switch {
		case p.Dataset != a.Dataset || !slices.Equal(p.Classes, a.Classes):
			return nil, fmt.Errorf("%w: different datasets (%q and %q)", ErrShards, a.Dataset, p.Dataset)
		case p.Output != a.Output || p.Dim != a.Dim:
			return nil, fmt.Errorf("%w: different outputs (%s [%d] and %s [%d])", ErrShards, a.Output, a.Dim, p.Output, p.Dim)
		case p.Rows != len(Shard{Index: p.Shard.Index, Count: p.Shard.Count}.Indices(p.Shard.Total)):
			return nil, fmt.Errorf("%w: shard %s has %d rows; it should have %d", ErrShards, p.Shard.Shard, p.Rows, len(p.Shard.Indices(p.Shard.Total)))
		}
		byIndex[p.Shard.Index] = p
		rows += p.Rows
	}
	n := len(parts)
	m := &Features{FeaturesManifest: a.FeaturesManifest}
	m.Shard, m.Rows = nil, rows
	m.Data = make([]float32, 0, rows*a.Dim)
	for i := range rows {
		p, j := byIndex[i%n], i/n
		m.Data = append(m.Data, p.Data[j*a.Dim:(j+1)*a.Dim]...)
		m.Labels = append(m.Labels, p.Labels[j])
		m.Files = append(m.Files, p.Files[j])
	}
	return m, nil
}
