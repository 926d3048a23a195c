#!/usr/bin/env bash
# Assembles the root filesystem of the bitrun container image in DEST from
# Debian packages, without a base image: apt-get download fetches exactly the
# runtime libraries (glibc, libgcc/libstdc++ for ONNX Runtime, OpenBLAS,
# libjpeg-turbo's TurboJPEG, the CA bundle for zoo pulls), dpkg-deb -x unpacks
# them, and bitrun and its ONNX Runtime library are copied in the layout
# `make install` uses (/usr/local/bin/bitrun finds ../lib/bitrun/).
#
#   scripts/image-rootfs.sh DEST [BIN [ORT_DIR]]
#
# BIN defaults to bin/bitrun, ORT_DIR to third_party/onnxruntime. Packages are
# cached in $DEB_CACHE (default bin/image/debs). The Containerfile runs this
# script in its build stage; `make image` runs it on this machine, so both
# images hold the same files. Run as root: the home folder belongs to the
# image's user (uid 65532).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dest=${1:?usage: image-rootfs.sh DEST [BIN [ORT_DIR]]}
bin=${2:-$root/bin/bitrun}
ort=${3:-$root/third_party/onnxruntime}
cache=${DEB_CACHE:-$root/bin/image/debs}
uid=65532
# The runtime closure of bitrun and libonnxruntime.so (see `ldd`); the
# image test checks that nothing else is needed.
pkgs=(libc6 libgcc-s1 libstdc++6 libgfortran5 libquadmath0 libopenblas0-pthread libturbojpeg0 ca-certificates)

[ -x "$bin" ] || { echo "image-rootfs: no bitrun binary at $bin (make build)" >&2; exit 1; }
[ -e "$ort/libonnxruntime.so" ] || { echo "image-rootfs: no ONNX Runtime in $ort (scripts/install-ort.sh)" >&2; exit 1; }
command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null || { echo "image-rootfs: needs apt-get and dpkg-deb (Debian)" >&2; exit 1; }

# 1. Download the packages once (apt's candidates of this Debian release).
mkdir -p "$cache"
missing=()
for p in "${pkgs[@]}"; do
  compgen -G "$cache/${p}_*.deb" >/dev/null || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "image-rootfs: downloading ${missing[*]}" >&2
  (cd "$cache" && apt-get download -qq "${missing[@]}" 2>&1 | grep -v 'unsandboxed as root' >&2 || true)
  for p in "${missing[@]}"; do
    compgen -G "$cache/${p}_*.deb" >/dev/null || { echo "image-rootfs: apt-get download $p failed" >&2; exit 1; }
  done
fi

# 2. Unpack them (no maintainer scripts run: their few effects are done below).
rm -rf "$dest"
mkdir -p "$dest"
for p in "${pkgs[@]}"; do
  dpkg-deb -x "$(ls "$cache/${p}"_*.deb | tail -n1)" "$dest"
done
arch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo "$(uname -m)-linux-gnu")
libdir=$dest/usr/lib/$arch
# OpenBLAS's alternatives link, and the CA bundle update-ca-certificates would write.
ln -sf openblas-pthread/libopenblas.so.0 "$libdir/libopenblas.so.0"
rm -f "$libdir"/openblas-pthread/lib{blas,lapack}.so.3
mkdir -p "$dest/etc/ssl/certs"
cat "$dest"/usr/share/ca-certificates/mozilla/*.crt >"$dest/etc/ssl/certs/ca-certificates.crt"
# What a server needs none of: docs, locales, charset converters, tools.
rm -rf "$dest"/usr/share/{doc,man,info,lintian,locale,ca-certificates,gcc,gdb} \
  "$dest"/usr/lib/"$arch"/gconv "$dest"/usr/lib/"$arch"/audit "$dest"/usr/libexec \
  "$dest"/usr/sbin "$dest"/usr/bin "$dest"/sbin "$dest"/etc/ca-certificates* "$dest"/etc/default \
  "$dest"/etc/ld.so.conf.d "$dest"/usr/lib/ssl

# 3. bitrun and ONNX Runtime, laid out as `make install PREFIX=/usr/local` does.
install -D -m 0755 "$bin" "$dest/usr/local/bin/bitrun"
mkdir -p "$dest/usr/local/lib/bitrun"
cp -P "$ort"/libonnxruntime.so* "$dest/usr/local/lib/bitrun/"

# 4. Users, folders and the loader cache.
mkdir -p "$dest/etc" "$dest/tmp" "$dest/home/bitrun" "$dest/mnt/models"
chmod 1777 "$dest/tmp"
printf 'root:x:0:0:root:/root:/sbin/nologin\nbitrun:x:%d:%d:bitrun:/home/bitrun:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n' $uid $uid >"$dest/etc/passwd"
printf 'root:x:0:\nbitrun:x:%d:\nnogroup:x:65534:\n' $uid >"$dest/etc/group"
printf 'hosts: files dns\n' >"$dest/etc/nsswitch.conf"
printf '/usr/local/lib/bitrun\n/lib/%s\n/usr/lib/%s\n' "$arch" "$arch" >"$dest/etc/ld.so.conf"
if [ "$(id -u)" = 0 ]; then
  chown "$uid:$uid" "$dest/home/bitrun"
fi
ldconfig -r "$dest"
echo "image-rootfs: $(du -sh "$dest" | cut -f1) in $dest" >&2
