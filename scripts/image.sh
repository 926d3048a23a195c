#!/usr/bin/env bash
# `make image`: builds the Containerfile's image on this machine without an
# image registry. The root filesystem comes from scripts/image-rootfs.sh (as
# in the Containerfile's build stage); podman builds the Containerfile's
# final stage on it with --pull=never, so the image's config (user,
# entrypoint, health check, labels) is the Containerfile's, line for line.
#
#   IMAGE=localhost/bitrun:dev scripts/image.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
image=${IMAGE:-localhost/bitrun:latest}
work=$root/bin/image
command -v podman >/dev/null || { echo "image: podman is needed (apt-get install podman runc)" >&2; exit 1; }
"$root/scripts/image-rootfs.sh" "$work/rootfs"
# The final stage, with the assembled folder in place of the build stage's.
awk '/^FROM scratch/ {p = 1} p' "$root/Containerfile" |
  sed 's|^COPY --from=build /rootfs /$|COPY rootfs /|' >"$work/Containerfile"
grep -q '^COPY rootfs /$' "$work/Containerfile" || { echo "image: Containerfile's final stage lost its 'COPY --from=build /rootfs /'" >&2; exit 1; }
version=$(cd "$root" && git describe --tags --always --dirty 2>/dev/null || echo dev)
commit=$(cd "$root" && git rev-parse HEAD 2>/dev/null || echo unknown)
podman build --quiet --pull=never --format docker --timestamp 0 \
  --build-arg VERSION="$version" --build-arg COMMIT="$commit" \
  -f "$work/Containerfile" -t "$image" "$work" >/dev/null
size=$(podman image inspect --format '{{.Size}}' "$image")
echo "image: built $image ($((size / 1000000)) MB, version $version)" >&2
