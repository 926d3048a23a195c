#!/usr/bin/env bash
# Runs every Go fuzz target in the repository for FUZZTIME each (make fuzz).
# A target fails when it finds a crasher (Go writes it under testdata/fuzz/).
# Go's fuzzing engine sometimes ends a run with "context deadline exceeded"
# when a worker is slow to answer at the deadline, without any crasher; such
# a target is run once more, and fails if it happens again.
# New corpus entries are not minimised (-fuzzminimizetime 1x; override with
# FUZZMINIMIZE): with Go's default of up to 60 s per entry, a 5-10 s run
# spent most of its time minimising (FuzzDecodeUpload: 324 executions in
# 10 s, 52,790 in 12 s without). A crasher is still written and reproduces
# with go test -run=FuzzX/ID; minimise it locally if needed.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
FUZZTIME=${FUZZTIME:-10s}
FUZZMINIMIZE=${FUZZMINIMIZE:-1x}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for pkg in $(grep -rl --include='*_test.go' '^func Fuzz' . | xargs -n1 dirname | sort -u); do
	for t in $(grep -h '^func Fuzz' "$pkg"/*_test.go | sed 's/^func \(Fuzz[A-Za-z0-9_]*\).*/\1/'); do
		for try in 1 2; do
			echo "fuzz $pkg $t (try $try)"
			if "$GO" test -run '^$' -fuzz "^$t\$" -fuzztime "$FUZZTIME" -fuzzminimizetime "$FUZZMINIMIZE" "$pkg" 2>&1 | tee "$log"; then
				break
			fi
			if [ "$try" = 2 ] || ! grep -q 'context deadline exceeded' "$log" || grep -q 'Failing input written to' "$log"; then
				echo "fuzz: $pkg $t failed" >&2
				exit 1
			fi
			echo "fuzz: $pkg $t: engine timeout without a crasher; running it again" >&2
		done
	done
done
