#!/usr/bin/env bash
# Serving throughput against offline throughput at the same batch size.
#
# Exports a randomly initialised BiT (ARCH, default small) at RES (default 64)
# pixels, starts `bitrun serve` on it with its defaults (plus $SERVE_FLAGS),
# and for ROUNDS rounds (default 3) interleaves:
#   bitrun bench --batch 16                (one stream: what `bitrun bench` prints)
#   bitrun bench --batch 16 --streams W    (the server's worker layout, offline)
#   bitrun loadtest --concurrency 32 --requests 2000, once per test image
# and prints one line per measurement with the server's CPU time per image,
# then the medians and the serve/bench ratios.
#
# Test images: Go's own test photo (src/image/testdata/video-001.jpeg, 150x103)
# and the same photo upscaled to 600x412 and re-encoded at quality 90 (a
# typical web upload). The load generator runs on the same machine and takes
# its share of the cores; the server is not pinned.
#
# Usage: scripts/serve-loadtest.sh [ARCH [RES]]   (after make build or make setup)
set -euo pipefail
. "$(dirname "$0")/serve-lib.sh"
model_args small 64 "$@"
port=${PORT:-18089}
bin=${BITRUN:-$root/bin/bitrun}
work=${WORK:-$(mktemp -d -t bitrun-loadtest-XXXXXX)}
build_bitrun "$bin"
command -v python3 >/dev/null || { echo "serve-loadtest: needs python3 to read JSON" >&2; exit 1; }

mkdir -p "$work/mkphoto"
cat > "$work/mkphoto/main.go" <<'GO'
// Upscales a JPEG 4x bilinearly and writes it at quality 90.
package main

import (
	"image"
	"image/color"
	"image/jpeg"
	"os"
)

func main() {
	f, err := os.Open(os.Args[1])
	if err != nil {
		panic(err)
	}
	src, err := jpeg.Decode(f)
	if err != nil {
		panic(err)
	}
	b := src.Bounds()
	w, h := b.Dx()*4, b.Dy()*4
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	at := func(x, y int) (float64, float64, float64) {
		x, y = min(max(x, 0), b.Dx()-1), min(max(y, 0), b.Dy()-1)
		r, g, bl, _ := src.At(b.Min.X+x, b.Min.Y+y).RGBA()
		return float64(r >> 8), float64(g >> 8), float64(bl >> 8)
	}
	// near maps output pixel i to the source pixel at or before its centre
	// (-1 left of the first) and the weight of the one after it.
	near := func(i int) (int, float64) {
		s := (float64(i)+0.5)/4 - 0.5
		i0 := int(s)
		if s < 0 {
			i0 = -1
		}
		return i0, s - float64(i0)
	}
	for y := 0; y < h; y++ {
		y0, fy := near(y)
		for x := 0; x < w; x++ {
			x0, fx := near(x)
			var c [3]float64
			for _, t := range [4]struct{ dx, dy int; w float64 }{{0, 0, (1 - fx) * (1 - fy)}, {1, 0, fx * (1 - fy)}, {0, 1, (1 - fx) * fy}, {1, 1, fx * fy}} {
				r, g, bl := at(x0+t.dx, y0+t.dy)
				c[0] += t.w * r
				c[1] += t.w * g
				c[2] += t.w * bl
			}
			dst.Set(x, y, color.RGBA{uint8(c[0] + 0.5), uint8(c[1] + 0.5), uint8(c[2] + 0.5), 255})
		}
	}
	out, err := os.Create(os.Args[2])
	if err != nil {
		panic(err)
	}
	if err := jpeg.Encode(out, dst, &jpeg.Options{Quality: 90}); err != nil {
		panic(err)
	}
	if err := out.Close(); err != nil {
		panic(err)
	}
}
GO
cp "$photo" "$work/photo-150x103.jpg"
(cd "$work/mkphoto" && GOFLAGS=-mod=mod GO111MODULE=off go run main.go "$photo" "$work/photo-600x412.jpg")
images=${IMAGES:-"$work/photo-150x103.jpg $work/photo-600x412.jpg"}

model="$work/$arch-$res.onnx"
[ -e "$model" ] || random_model "$bin" "$arch" "$res" "$work/$arch.npz" "$model"

"$bin" serve --onnx "$model" --name m --addr "127.0.0.1:$port" --log-level info ${SERVE_FLAGS:-} 2>"$work/serve.log" &
sp=$!
trap 'kill -TERM $sp 2>/dev/null || true' EXIT
wait_ready "$bin" "http://127.0.0.1:$port"
workers=$(grep -o 'workers=[0-9]*' "$work/serve.log" | head -1 | cut -d= -f2)
threads=$(grep -o 'intra_op_threads=[0-9]*' "$work/serve.log" | head -1 | cut -d= -f2)
echo "model $arch at ${res}px; server: ${workers:-?} workers x ${threads:-?} intra-op threads; $(nproc) cores; jpeg: $("$bin" version | sed -n 's/^jpeg: //p')"
tck=$(getconf CLK_TCK)
cpu() { awk '{print $14+$15}' "/proc/$1/stat"; }
results="$work/results.txt"
: > "$results"
for r in $(seq "$rounds"); do
  for s in 1 "${workers:-1}"; do
    "$bin" bench --onnx "$model" --resolution "$res" --batch 16 --runs 60 --warmup 3 --streams "$s" --json 2>/dev/null |
      python3 -c 'import json,sys; r=json.load(sys.stdin); s=r["streams"]; v=r["images_per_sec"]["median"] if s==1 else r["throughput_images_per_sec"]; print("bench-streams%d %.1f cpu_ms/img %.2f" % (s, v, r["cpu_ms_per_image"]))' | tee -a "$results"
  done
  for img in $images; do
    c0=$(cpu $sp)
    "$bin" loadtest --url "http://127.0.0.1:$port" --image "$img" --concurrency 32 --requests "${REQUESTS:-2000}" --json > "$work/lt.json"
    c1=$(cpu $sp)
    python3 - "$work/lt.json" "$(basename "$img")" "$c0" "$c1" "$tck" <<'PY' | tee -a "$results"
import json, sys
r = json.load(open(sys.argv[1]))
name, c0, c1, tck = sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
fivexx = sum(v for k, v in r["status"].items() if k.startswith("5"))
print("serve-%s %.1f p50 %.1f ms p99 %.1f ms ok %d 5xx %d lost %d mean_batch %.2f server_cpu_ms/img %.2f" % (
    name, r["requests_per_sec"], r["latency_ms"]["p50"], r["latency_ms"]["p99"], r["ok"], fivexx, r["lost"],
    r["mean_batch"], (c1 - c0) * 1000.0 / tck / r["requests"]))
PY
  done
done
python3 - "$results" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    f = line.split()
    rows.setdefault(f[0], []).append(float(f[1]))
med = {k: statistics.median(v) for k, v in rows.items()}
print("medians over %d rounds (images/s):" % len(rows["bench-streams1"]))
for k, v in med.items():
    print("  %-28s %8.1f" % (k, v))
benches = [k for k in med if k.startswith("bench-")]
for k in med:
    if k.startswith("serve-"):
        print("  %s: " % k + ", ".join("%.0f%% of %s" % (100 * med[k] / med[b], b) for b in benches))
PY
echo "files: $work"
