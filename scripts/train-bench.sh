#!/usr/bin/env bash
# Native training step against PyTorch on the same CPU, side by side.
#
#   scripts/train-bench.sh [ROUNDS]
#
# Interleaves, ROUNDS times (default 3): bitrun's pure-Go GEMM peak
# (bitrun bench --gemm), bitrun bench --train and the PyTorch peer
# (../shared/bench/torch_peer.py with Debian's python3-torch, 2 threads) for
# R50x1 at 128 px batch 8 and for the demo's small net at 32 px batch 128;
# then the R50x1 inference on the native engine against ONNX Runtime. Prints
# the medians, the ratios and the step's share of the GEMM peak. PyTorch is an
# optional peer: without it the script prints bitrun's figures alone.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
peer=${TORCH_PEER:-../shared/bench/torch_peer.py}
py=${PYTHON:-/usr/bin/python3}
threads=${THREADS:-2}
bin=bin/bitrun
make -s build >/dev/null
have_torch=0
if [ -f "$peer" ] && "$py" -c 'import torch' 2>/dev/null; then have_torch=1; fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# field FILE KEY: the number after "KEY" in bitrun bench's text output.
field() { awk -v k="$2" 'index($0, k) == 1 { sub(k, ""); print $1 + 0; exit }' "$1"; }
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

"$bin" init --arch R50x1 --classes 10 --out "$tmp/r50.npz" >/dev/null 2>&1
"$bin" export --weights "$tmp/r50.npz" --out "$tmp/r50.onnx" --resolution 128 >/dev/null 2>&1

for r in $(seq "$rounds"); do
  echo "round $r/$rounds" >&2
  "$bin" bench --gemm --runs 10 --warmup 2 >"$tmp/o" 2>/dev/null
  field "$tmp/o" "work:" >>"$tmp/gemm"
  for cfg in "R50x1 128 8 5" "small 32 128 10"; do
    set -- $cfg
    "$bin" bench --arch "$1" --train --resolution "$2" --batch "$3" --runs "$4" --warmup 2 >"$tmp/o" 2>/dev/null
    field "$tmp/o" "per image:" >>"$tmp/bit-$1"
    field "$tmp/o" "work:" >>"$tmp/gf-$1"
    awk '/cores busy/ { print $(NF-2) }' "$tmp/o" >>"$tmp/busy-$1"
    if [ "$have_torch" = 1 ]; then
      "$py" "$peer" --arch "$1" --res "$2" --batch "$3" --threads "$threads" --train --reps "$4" |
        awk -F= '/train_ms_per_image/ { print $2 }' >>"$tmp/torch-$1"
    fi
  done
  "$bin" bench --weights "$tmp/r50.npz" --resolution 128 --batch 8 --runs 10 --warmup 2 >"$tmp/o" 2>/dev/null
  field "$tmp/o" "per image:" >>"$tmp/native-infer"
  "$bin" bench --onnx "$tmp/r50.onnx" --batch 8 --runs 10 --warmup 2 >"$tmp/o" 2>/dev/null
  field "$tmp/o" "per image:" >>"$tmp/ort-infer"
done

peak=$(median <"$tmp/gemm")
printf '\nmedians of %d interleaved rounds (ms per image; GEMM peak %.1f GFLOP/s, pure Go, all cores)\n' "$rounds" "$peak"
printf '%-34s %10s %10s %8s %12s %10s\n' "work" "bitrun" "pytorch" "ratio" "% GEMM peak" "cores"
for a in R50x1 small; do
  b=$(median <"$tmp/bit-$a"); g=$(median <"$tmp/gf-$a"); busy=$(median <"$tmp/busy-$a")
  t=nan; ratio=-
  if [ -s "$tmp/torch-$a" ]; then t=$(median <"$tmp/torch-$a"); ratio=$(awk -v b="$b" -v t="$t" 'BEGIN { printf "%.2fx", b / t }'); fi
  case $a in R50x1) what="training step R50x1 128px b8";; small) what="training step small 32px b128";; esac
  printf '%-34s %10.3f %10s %8s %11.0f%% %10s\n' "$what" "$b" "$t" "$ratio" "$(awk -v g="$g" -v p="$peak" 'BEGIN { print 100 * g / p }')" "$busy"
done
n=$(median <"$tmp/native-infer"); o=$(median <"$tmp/ort-infer")
printf '%-34s %10.3f %10s %8s  (ONNX Runtime %.3f ms)\n' "inference R50x1 128px b8, native" "$n" "-" "$(awk -v n="$n" -v o="$o" 'BEGIN { printf "%.2fx", n / o }')" "$o"
