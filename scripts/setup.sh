#!/usr/bin/env bash
# Installs what bitrun's build, tests and demo need on a Debian machine:
# OpenBLAS and libjpeg-turbo's TurboJPEG (both loaded at run time), the
# Fashion-MNIST dataset package, npm (for the ONNX Runtime library),
# Chromium (the serve page's browser test), podman and runc (the container
# image's build and test), Debian's Python gRPC stack and protoc (the
# independent gRPC client test; /usr/bin/python3, not a pyenv one), Go
# modules and the ONNX Runtime library itself.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
need=()
[ -e /usr/lib/x86_64-linux-gnu/libopenblas.so.0 ] || [ -e /usr/lib/aarch64-linux-gnu/libopenblas.so.0 ] || need+=(libopenblas-dev)
[ -e /usr/lib/x86_64-linux-gnu/libturbojpeg.so.0 ] || [ -e /usr/lib/aarch64-linux-gnu/libturbojpeg.so.0 ] || need+=(libturbojpeg0)
[ -d /usr/share/datasets/fashion-mnist ] || need+=(dataset-fashion-mnist)
command -v npm >/dev/null || need+=(npm)
command -v chromium >/dev/null || need+=(chromium)
command -v podman >/dev/null || need+=(podman)
command -v runc >/dev/null || need+=(runc)
/usr/bin/python3 -c 'import grpc' 2>/dev/null || need+=(python3-grpcio)
/usr/bin/python3 -c 'import google.protobuf' 2>/dev/null || need+=(python3-protobuf)
command -v protoc >/dev/null || need+=(protobuf-compiler)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing ${need[*]}" >&2
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "setup: please install the Debian packages: ${need[*]}" >&2
    exit 1
  fi
fi
(cd "$root" && go mod download && cd deploy && go mod download)
"$root/scripts/install-ort.sh"
