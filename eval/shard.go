package eval

import (
	"errors"
	"fmt"
	"slices"
)

// ErrShards is wrapped when shard reports (or feature shards) cannot be
// merged: they come from different models, datasets, settings or shard
// counts, or a shard is missing or given twice.
var ErrShards = errors.New("eval: shards do not merge")

// Shard selects a deterministic 1/Count of a dataset: the examples whose
// index i (among the first Limit, or all) has i % Count == Index. Every
// example belongs to exactly one shard of a count, and the shards together
// visit the examples in the same order an unsharded run does, interleaved.
// The zero value (Count 0) is the whole dataset.
type Shard struct {
	Index int `json:"index"`
	Count int `json:"count"`
}

// Check reports whether the shard is valid: Count 0 (no sharding), or
// 0 <= Index < Count.
func (s Shard) Check() error {
	if s.Count < 0 || s.Count > 0 && (s.Index < 0 || s.Index >= s.Count) || s.Count == 0 && s.Index != 0 {
		return fmt.Errorf("eval: shard %d/%d: want 0 <= index < count", s.Index, s.Count)
	}
	return nil
}

// Sharded reports whether s selects part of a dataset.
func (s Shard) Sharded() bool { return s.Count > 0 }

func (s Shard) String() string { return fmt.Sprintf("%d/%d", s.Index, s.Count) }

// Indices are the example indices of the shard among the first total.
func (s Shard) Indices(total int) []int {
	if !s.Sharded() {
		idx := make([]int, total)
		for i := range idx {
			idx[i] = i
		}
		return idx
	}
	idx := make([]int, 0, total/s.Count+1)
	for i := s.Index; i < total; i += s.Count {
		idx = append(idx, i)
	}
	return idx
}

// ShardInfo is what a shard's report records to be merged: its shard and
// the number of examples the whole run covers.
type ShardInfo struct {
	Shard
	Total int `json:"total"` // examples of the whole (unsharded) run
}

// part is what checkParts reads of a report or a features file: its shard
// record, and the model (name and SHA-256) and preprocessing it ran.
type part struct {
	shard      *ShardInfo
	model, sha string
	preprocess Preprocess
}

func (r *Report) part() part   { return part{r.Shard, r.Model, r.ModelSHA256, r.Preprocess} }
func (f *Features) part() part { return part{f.Shard, f.Model, f.ModelSHA256, f.Preprocess} }

// checkParts checks the parts of one sharded run before a merge: their
// shard records (checkShards), then that each ran the first part's model
// (name and SHA-256) with its preprocessing.
func checkParts[T interface{ part() part }](parts []T) error {
	infos := make([]*ShardInfo, len(parts))
	for i, p := range parts {
		infos[i] = p.part().shard
	}
	if err := checkShards(infos); err != nil {
		return err
	}
	a := parts[0].part()
	for _, p := range parts[1:] {
		b := p.part()
		switch {
		case b.model != a.model || b.sha != a.sha:
			return fmt.Errorf("%w: different models (%s %.12s and %s %.12s)", ErrShards, a.model, a.sha, b.model, b.sha)
		case b.preprocess.Size != a.preprocess.Size || b.preprocess.Channels != a.preprocess.Channels ||
			!slices.Equal(b.preprocess.Mean, a.preprocess.Mean) || !slices.Equal(b.preprocess.Std, a.preprocess.Std):
			return fmt.Errorf("%w: different preprocessing", ErrShards)
		}
	}
	return nil
}

// checkShards checks that shards are exactly 0..n-1 of one count n.
func checkShards(infos []*ShardInfo) error {
	if len(infos) == 0 {
		return fmt.Errorf("%w: no shards given", ErrShards)
	}
	for i, s := range infos {
		if s == nil || !s.Sharded() {
			return fmt.Errorf("%w: input %d is not a shard (run with --shard I/N)", ErrShards, i+1)
		}
	}
	n, total := infos[0].Count, infos[0].Total
	seen := make([]bool, n)
	for _, s := range infos {
		if s.Count != n {
			return fmt.Errorf("%w: shard counts differ (%s and %s)", ErrShards, infos[0].Shard, s.Shard)
		}
		if s.Total != total {
			return fmt.Errorf("%w: shards of runs over %d and %d examples", ErrShards, total, s.Total)
		}
		if err := s.Check(); err != nil {
			return fmt.Errorf("%w: %w", ErrShards, err)
		}
		if seen[s.Index] {
			return fmt.Errorf("%w: shard %s given twice", ErrShards, s.Shard)
		}
		seen[s.Index] = true
	}
	if i := slices.Index(seen, false); i >= 0 {
		return fmt.Errorf("%w: shard %d/%d missing (%d of %d given)", ErrShards, i, n, len(infos), n)
	}
	return nil
}

// Merge combines the reports of every shard of one sharded run into the
// report the unsharded run gives: the counts, top-1/top-k, per-class
// accuracy and confusion matrix are exact (summed counts, ratios computed
// from them as Run does). It refuses reports of different models (name and
// SHA-256), datasets, preprocessing, k or shard counts, and a missing or
// duplicate shard (ErrShards). Timing sums the shards' times (Seconds is
// the total of their wall times, ImagesPerSec images over that total).
func Merge(reports []*Report) (*Report, error) {
	if err := checkParts(reports); err != nil {
		return nil, err
	}
	a := reports[0]
	for _, r := range reports[1:] {
		switch {
		case r.Dataset != a.Dataset:
			return nil, fmt.Errorf("%w: different datasets (%q and %q)", ErrShards, a.Dataset, r.Dataset)
		case r.K != a.K || r.Classes != a.Classes:
			return nil, fmt.Errorf("%w: different k or class counts (top-%d of %d and top-%d of %d)", ErrShards, a.K, a.Classes, r.K, r.Classes)
		case !slices.Equal(r.Labels, a.Labels):
			return nil, fmt.Errorf("%w: different labels", ErrShards)
		}
	}
	m := &Metrics{k: a.K, classes: a.Classes}
	var tm Timing
	for _, r := range reports {
		m.n += r.Images
		m.top1 += r.Top1Correct
		m.topk += r.TopKCorrect
		// The matrix is checked whole before it is sized by it: a small
		// file of many empty rows must not allocate rows² counters.
		if len(r.Confusion) > MaxClasses {
			return nil, fmt.Errorf("%w: shard %s: a confusion matrix of %d rows exceeds the limit of %d classes", ErrShards, r.Shard.Shard, len(r.Confusion), MaxClasses)
		}
		for i, row := range r.Confusion {
			if len(row) != len(r.Confusion) {
				return nil, fmt.Errorf("%w: shard %s: confusion row %d has %d columns, want %d", ErrShards, r.Shard.Shard, i, len(row), len(r.Confusion))
			}
		}
		m.grow(len(r.Confusion))
		for i, row := range r.Confusion {
			for j, v := range row {
				m.confusion[i][j] += v
			}
		}
		tm.Seconds += r.Timing.Seconds
		tm.InferenceSeconds += r.Timing.InferenceSeconds
		tm.StallSeconds += r.Timing.StallSeconds
		tm.PreprocessSeconds += r.Timing.PreprocessSeconds
	}
	if m.n != int64(a.Shard.Total) {
		return nil, fmt.Errorf("%w: the shards hold %d examples, the run %d", ErrShards, m.n, a.Shard.Total)
	}
	if tm.Seconds > 0 {
		tm.ImagesPerSec = float64(m.n) / tm.Seconds
	}
	return m.report(a.Model, a.ModelSHA256, a.Dataset, a.Labels, a.Preprocess, a.Batch, tm), nil
}
