# Sourced by the serving scripts (serve-loadtest.sh, serve-soak.sh,
# loadtest-protocols.sh): the repository root, the ONNX Runtime library,
# Go's test photo, and the steps they all take: build bitrun, export a
# randomly initialised model, wait for the server to be ready.
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export BITRUN_ORT_LIB=${BITRUN_ORT_LIB:-$root/third_party/onnxruntime/libonnxruntime.so}
photo=$(go env GOROOT)/src/image/testdata/video-001.jpeg

# model_args DEFAULT_ARCH DEFAULT_RES [ARCH [RES]]: the model a benchmark
# script measures, from its arguments (ARCH RES) or the defaults given, in
# $arch and $res, and its rounds, $ROUNDS (default 3), in $rounds.
model_args() {
  arch=${3:-$1}
  res=${4:-$2}
  rounds=${ROUNDS:-3}
}

# build_bitrun BIN: builds ./cmd/bitrun as BIN unless BIN is there.
build_bitrun() {
  [ -x "$1" ] || (cd "$root" && go build -o "$1" ./cmd/bitrun)
}

# random_model BIN ARCH RES NPZ ONNX: a randomly initialised ARCH with 10
# classes saved as NPZ and exported at RES pixels as ONNX.
random_model() {
  "$1" init --arch "$2" --classes 10 --out "$4" --force >/dev/null 2>&1
  "$1" export --weights "$4" --resolution "$3" --out "$5" --force >/dev/null 2>&1
}

# wait_ready BIN URL: waits up to 60 s for the server at URL to answer its
# readiness probe (bitrun health); fails when it never does.
wait_ready() {
  for _ in $(seq 300); do
    "$1" health --url "$2" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  echo "$(basename "$0"): the server at $2 was not ready within 60 s" >&2
  return 1
}
