package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/bitrun/bitrun/eval"
	"github.com/bitrun/bitrun/internal/atomicfile"
	"github.com/spf13/cobra"
)

// evalMergeOptions are the settings of bitrun eval merge.
type evalMergeOptions struct {
	Reports []string // shard reports (eval --json or --report), one per shard
	JSON    bool     // print JSON instead of the table
	Out     string   // also write the merged JSON report here
	Plot    string   // write the confusion matrix PNG here
}

func newEvalMergeCmd() *cobra.Command {
	var opts evalMergeOptions
	cmd := &cobra.Command{
		Use:   "merge SHARD.json...",
		Short: "Combine the JSON reports of every shard of a sharded eval into the whole run's report",
		Long: `Combine the JSON reports of "bitrun eval --shard I/N" (--json output or
--report files), one per shard, into the report of the unsharded run:
counts, top-1/top-k, per-class accuracy and the confusion matrix are exact.
Reports of different models (file SHA-256), datasets, preprocessing or
shard counts are refused, and so is a missing or repeated shard. Timing is
the sum of the shards' times.`,
		Example: `  bitrun eval --onnx m.onnx --data DIR --shard 0/3 --report eval-{shard}.json   # and 1/3, 2/3
  bitrun eval merge eval-0.json eval-1.json eval-2.json --json`,
		Args: cobra.MinimumNArgs(1),
		RunE: runE(boundArgs(&opts, &opts.Reports), runEvalMerge),
	}
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print the merged report as JSON")
	cmd.Flags().StringVar(&opts.Out, "out", "", "also write the merged JSON report to this file")
	cmd.Flags().StringVar(&opts.Plot, "plot", "", "write the merged confusion matrix as a PNG to this file")
	return cmd
}

func (o evalMergeOptions) validate() error {
	if err := checkOutputFlag("eval merge", "--out", o.Out); err != nil {
		return err
	}
	return checkOutputFlag("eval merge", "--plot", o.Plot)
}

// readEvalReport reads one shard's JSON report.
func readEvalReport(path string) (*eval.Report, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("eval merge: %w", err)
	}
	var r eval.Report
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("eval merge: %s: not an eval JSON report: %w", path, err)
	}
	return &r, nil
}

func runEvalMerge(_ context.Context, opts evalMergeOptions, stdout, stderr io.Writer) error {
	reports, err := readShards(opts.Reports, readEvalReport)
	if err != nil {
		return err
	}
	merged, err := eval.Merge(reports)
	if err != nil {
		return err
	}
	if opts.Out != "" {
		if err := atomicfile.WriteJSON(opts.Out, merged); err != nil {
			return fmt.Errorf("eval merge: %w", err)
		}
	}
	return writeReport(stdout, stderr, merged, opts.JSON, opts.Plot)
}
