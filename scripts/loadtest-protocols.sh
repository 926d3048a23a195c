#!/usr/bin/env bash
# Serving throughput by protocol (issues 14 and 15): the same model and image
# through predict, v2 infer with JSON tensors, v2 infer with the binary
# tensor data extension and KServe v2 gRPC, at batch 1 and 16.
#
# Exports a randomly initialised BiT (ARCH, default R50x1) at RES (default
# 128) pixels, starts `bitrun serve --onnx m.onnx --grpc-addr` on it with its
# defaults, measures its rate once with a short predict run, then for ROUNDS
# rounds (default 3) runs, interleaved,
#   bitrun loadtest --protocol P --batch B --concurrency CONC (default 16)
# for every protocol P and batch B, each with enough requests for about
# SECONDS (default 20) seconds (at least 2 × CONC), and prints one line per
# run, then the medians of images/s, p50 and p99.
#
# The image is Go's own test photo (src/image/testdata/video-001.jpeg,
# 150x103). The infer and gRPC protocols send it preprocessed by loadtest
# (FP32 [B, 3, RES, RES]); predict sends the JPEG. The load generator runs
# on the same machine and takes its share of the cores.
#
# Usage: scripts/loadtest-protocols.sh [ARCH [RES]]   (after make setup)
set -euo pipefail
. "$(dirname "$0")/serve-lib.sh"
model_args R50x1 128 "$@"
conc=${CONC:-16}
secs=${SECONDS_PER_RUN:-20}
port=${PORT:-18090}
gport=${GRPC_PORT:-9001}
work=${WORK:-$(mktemp -d -t bitrun-protocols-XXXXXX)}
bin=${BITRUN:-$work/bitrun}
build_bitrun "$bin"
py=/usr/bin/python3

cd "$work"
random_model "$bin" "$arch" "$res" m.npz m.onnx
"$bin" serve --onnx m.onnx --addr "127.0.0.1:$port" --grpc-addr "127.0.0.1:$gport" 2>serve.log &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null || true' EXIT
url=http://127.0.0.1:$port
wait_ready "$bin" "$url"

# The server's rate, to size the runs.
"$bin" loadtest --url "$url" --image "$photo" --concurrency "$conc" --requests $((3 * conc)) --json >calib.json
ips=$($py -c 'import json,sys; print(json.load(open(sys.argv[1]))["images_per_sec"])' calib.json)
echo "calibration: $ips images/s (predict, batch 1); $rounds rounds of ~${secs}s runs, $conc clients" >&2

: >runs.jsonl
for r in $(seq "$rounds"); do
  for batch in 1 16; do
    n=$($py -c "import math; print(max(2*$conc, math.ceil($ips*$secs/$batch)))")
    for proto in predict infer-json infer-binary grpc; do
      extra=()
      [ "$proto" = grpc ] && extra=(--grpc-addr "127.0.0.1:$gport")
      "$bin" loadtest --url "$url" --protocol "$proto" --batch "$batch" --image "$photo" \
        --concurrency "$conc" --requests "$n" "${extra[@]}" --json >run.json
      $py - "$r" run.json >>runs.jsonl <<'PY'
import json, sys
rep = json.load(open(sys.argv[2]))
rep["round"] = int(sys.argv[1])
print(json.dumps(rep))
l = rep["latency_ms"]
print(f'round {rep["round"]} {rep["protocol"]:12s} batch {rep["batch"]:2d}: {rep["images_per_sec"]:7.1f} images/s  '
      f'p50 {l["p50"]:8.1f} ms  p99 {l["p99"]:8.1f} ms  ok {rep["ok"]}/{rep["requests"]}  mean server batch {rep.get("mean_batch", 0):.1f}',
      file=sys.stderr)
PY
    done
  done
done

$py - runs.jsonl <<'PY'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
print(f'| protocol | batch | images/s | p50 ms | p99 ms | mean server batch |')
print(f'|---|---|---|---|---|---|')
for batch in (1, 16):
    for proto in ("predict", "infer-json", "infer-binary", "grpc"):
        rs = [r for r in runs if r["protocol"] == proto and r["batch"] == batch]
        med = lambda f: statistics.median(f(r) for r in rs)
        print(f'| {proto} | {batch} | {med(lambda r: r["images_per_sec"]):.1f} | {med(lambda r: r["latency_ms"]["p50"]):.0f} '
              f'| {med(lambda r: r["latency_ms"]["p99"]):.0f} | {med(lambda r: r.get("mean_batch", 0)):.1f} |')
PY
