#!/usr/bin/env bash
# Installs the ONNX Runtime shared library (version pinned below) into
# third_party/onnxruntime/ (git-ignored). The Linux x64 build ships inside the
# npm package onnxruntime-node; its SHA-256 is checked before it is installed.
set -euo pipefail
ORT_VERSION=1.24.1
ORT_SHA256=53ef1ac028dd1b05554b8da28d9159eb3876f99868193d2aaa6e67f0243c23d4
root=$(cd "$(dirname "$0")/.." && pwd)
# ORT_DEST installs elsewhere, e.g. the per-user location a binary outside
# the checkout looks in: ORT_DEST=${XDG_DATA_HOME:-$HOME/.local/share}/bitrun/onnxruntime
dest="${ORT_DEST:-$root/third_party/onnxruntime}"
lib="$dest/libonnxruntime.so.$ORT_VERSION"
if [ -f "$lib" ] && echo "$ORT_SHA256  $lib" | sha256sum -c --status; then
  echo "onnxruntime $ORT_VERSION already installed: $lib" >&2
  exit 0
fi
case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) ;;
  *) echo "install-ort: only linux/x86_64 is scripted; download ONNX Runtime $ORT_VERSION from its release archive and set BITRUN_ORT_LIB" >&2; exit 1 ;;
esac
command -v npm >/dev/null || { echo "install-ort: npm is needed (apt-get install npm)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "onnxruntime-node@$ORT_VERSION" >/dev/null)
tar -xzf "$tmp"/onnxruntime-node-*.tgz -C "$tmp" package/bin/napi-v6/linux/x64/libonnxruntime.so.1
got=$(sha256sum "$tmp/package/bin/napi-v6/linux/x64/libonnxruntime.so.1" | cut -d' ' -f1)
if [ "$got" != "$ORT_SHA256" ]; then
  echo "install-ort: checksum mismatch for libonnxruntime.so.1: want $ORT_SHA256 got $got" >&2
  exit 1
fi
mkdir -p "$dest"
cp "$tmp/package/bin/napi-v6/linux/x64/libonnxruntime.so.1" "$lib.tmp"
mv "$lib.tmp" "$lib"
ln -sf "libonnxruntime.so.$ORT_VERSION" "$dest/libonnxruntime.so"
echo "installed onnxruntime $ORT_VERSION: $lib" >&2
