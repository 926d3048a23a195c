package main

import (
	"strconv"
	"strings"

	"github.com/bitrun/bitrun/eval"
)

// jobIndexEnv is the variable a Kubernetes Indexed Job sets to each pod's
// completion index.
const jobIndexEnv = "JOB_COMPLETION_INDEX"

// shardHelp documents --shard for eval and extract.
const shardHelp = `process a deterministic 1/N of the dataset: "I/N" (0 <= I < N), or "N" to take I from $` + jobIndexEnv + ` (Kubernetes Indexed Jobs); merge the shards' outputs with the merge subcommand`

// parseShard reads --shard: "I/N", or "N" with I from getenv(JOB_COMPLETION_INDEX).
// An empty value is the whole dataset.
func parseShard(s string, getenv func(string) string) (eval.Shard, error) {
	if s == "" {
		return eval.Shard{}, nil
	}
	is, ns, explicit := strings.Cut(s, "/")
	if !explicit {
		is, ns = getenv(jobIndexEnv), s
		if is == "" {
			return eval.Shard{}, usagef("--shard %s: give I/N, or set %s (as an Indexed Job does)", s, jobIndexEnv)
		}
	}
	i, err1 := strconv.Atoi(strings.TrimSpace(is))
	n, err2 := strconv.Atoi(strings.TrimSpace(ns))
	sh := eval.Shard{Index: i, Count: n}
	if err1 != nil || err2 != nil || n < 1 || sh.Check() != nil {
		return eval.Shard{}, usagef("--shard %q (index %q): want I/N with 0 <= I < N", s, is)
	}
	return sh, nil
}

// shardPath puts the shard index in place of "{shard}" in an output path,
// so that the pods of an Indexed Job write distinct files.
func shardPath(path string, sh eval.Shard) string {
	if !sh.Sharded() {
		return strings.ReplaceAll(path, "{shard}", "all")
	}
	return strings.ReplaceAll(path, "{shard}", strconv.Itoa(sh.Index))
}

// readShards reads the output of every shard with read, in the order given:
// the first step of eval merge and extract merge.
func readShards[T any](paths []string, read func(path string) (*T, error)) ([]*T, error) {
	parts := make([]*T, len(paths))
	for i, path := range paths {
		p, err := read(path)
		if err != nil {
			return nil, err
		}
		parts[i] = p
	}
	return parts, nil
}
