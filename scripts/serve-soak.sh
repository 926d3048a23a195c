#!/usr/bin/env bash
# Bounded adversarial soak of `bitrun serve` (issue 12): loopback only,
# bounded in time (DURATION, default 20s) and count.
#
# Starts `bitrun serve` on a randomly initialised tiny BiT at 64 px with
# small, explicit limits (--max-in-flight 16 --max-body 4MiB --max-pixels 4M),
# then, at the same time:
#   - normal traffic: `bitrun loadtest` with Go's test photo (REQUESTS,
#     default 1500, 4 clients), and
#   - scripts/soak (WORKERS attackers per kind, default 2, for DURATION): decode bombs
#     (a 199-byte 6300x6300 progressive header, 520 scans, and the costliest
#     progressive JPEG the bounds allow), KServe requests listing "logits"
#     100,000 times, slow bodies (a byte every 200 ms) and connections
#     aborted mid-body.
# It prints the attackers' answers per kind, the normal traffic's p50/p99
# and status counts, and the server's idle and peak RSS (VmHWM) against the
# bound documented in serve's package doc for these limits:
#   idle RSS + body memory (2 x max-in-flight x max-body here, under the 1 GiB
#   --max-body-memory) + max-decodes x 12 B x max-pixels (under the 512 MiB
#   --max-decode-memory)
# (max-decodes = 2 x GOMAXPROCS). It fails when a normal request is not a
# 200 or the peak RSS passes the bound.
#
# Usage: scripts/serve-soak.sh   (after make setup; builds bin/bitrun if missing)
set -euo pipefail
. "$(dirname "$0")/serve-lib.sh"
port=${PORT:-18090}
duration=${DURATION:-20s}
requests=${REQUESTS:-1500}
workers=${WORKERS:-2}
bin=${BITRUN:-$root/bin/bitrun}
work=$(mktemp -d -t bitrun-soak-XXXXXX)
command -v python3 >/dev/null || { echo "serve-soak: needs python3 to read JSON" >&2; exit 1; }
build_bitrun "$bin"
(cd "$root" && go build -o "$work/soak" ./scripts/soak)

max_in_flight=16 max_body_mib=4 max_pixels=4000000
random_model "$bin" tiny 64 "$work/tiny.npz" "$work/tiny.onnx"
"$bin" serve --onnx "$work/tiny.onnx" --name m --addr "127.0.0.1:$port" \
  --max-in-flight $max_in_flight --max-body ${max_body_mib}MiB --max-pixels $max_pixels 2>"$work/serve.log" &
sp=$!
trap 'kill -TERM $sp 2>/dev/null || true; wait $sp 2>/dev/null || true; rm -rf "$work"' EXIT
wait_ready "$bin" "http://127.0.0.1:$port"
kb() { awk -v k="$1:" '$1 == k {print $2}' "/proc/$sp/status"; }
idle=$(kb VmRSS)

"$work/soak" -url "http://127.0.0.1:$port" -duration "$duration" -workers "$workers" -resolution 64 > "$work/attacks.txt" &
ap=$!
"$bin" loadtest --url "http://127.0.0.1:$port" --image "$photo" --concurrency 4 --requests "$requests" --json > "$work/normal.json"
wait $ap
peak=$(kb VmHWM)
cat "$work/attacks.txt"

decodes=$((2 * $(nproc)))
bound=$((idle + (2 * max_in_flight * max_body_mib * 1024) + decodes * 12 * max_pixels / 1024))
python3 - "$work/normal.json" "$idle" "$peak" "$bound" "$decodes" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
idle, peak, bound, decodes = (int(x) for x in sys.argv[2:6])
bad = r["requests"] - r["status"].get("200", 0)
print("normal: %d requests, %.1f req/s, p50 %.1f ms, p99 %.1f ms, status %s, lost %d" % (
    r["requests"], r["requests_per_sec"], r["latency_ms"]["p50"], r["latency_ms"]["p99"], r["status"], r["lost"]))
print("server RSS: idle %.0f MiB, peak %.0f MiB, bound %.0f MiB (idle + 2 x 16 x 4 MiB bodies + %d decodes x 12 B x 4M pixels)" % (
    idle / 1024, peak / 1024, bound / 1024, decodes))
fail = []
if bad:
    fail.append("%d normal requests were not answered 200" % bad)
if peak > bound:
    fail.append("peak RSS over the bound")
if fail:
    print("serve-soak: FAIL: " + "; ".join(fail))
    sys.exit(1)
print("serve-soak: ok")
PY
