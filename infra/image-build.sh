#!/usr/bin/env bash
# Builds the Anvil container image with no registry access: a static musl `anvil` built on the host, the SPA built by spa/build.sh, the host's CA bundle, staged in target/image/ and put
# into a FROM-scratch image by podman. Installs what is missing (apt: podman buildah runc musl-tools; the
# rustup musl target), each install guarded so reruns skip it. Prints the image size. Works from any directory.
#
#   bash infra/image-build.sh                 # -> localhost/anvil:dev
#   ANVIL_IMAGE=localhost/anvil:1.2.3 bash infra/image-build.sh
#   ANVIL_IMAGE_SKIP_SPA=1 ...                # reuse the existing spa/dist (fails if there is none)
#
# The musl build has its own target dir (target/musl) so it never waits on, or invalidates, the workspace's
# everyday builds in target/.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
source infra/lib.sh

IMAGE="${ANVIL_IMAGE:-localhost/anvil:dev}"
TARGET=x86_64-unknown-linux-musl
MUSL_DIR=target/musl
STAGE=target/image
NICE="nice -n 10"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$ROOT/infra/containers.conf}"
PODMAN=(podman --storage-driver vfs)

# ---- tools (each guarded: a warm machine skips all of it)
apt_install podman buildah runc musl-tools ca-certificates file
if ! rustup target list --installed | grep -qx "$TARGET"; then
  rustup target add "$TARGET"
fi

# ---- binaries
# aws-lc-sys (rustls' crypto) and libsqlite3-sys (bundled SQLite) compile C for the target: musl-gcc from
# musl-tools compiles it against musl's headers. aws-lc-sys needs no cmake here (its cc builder and
# pregenerated bindings cover x86_64 musl).
export CC_x86_64_unknown_linux_musl=musl-gcc
log "cargo build --release --target $TARGET -p anvil-server"
$NICE cargo build --release --locked --target "$TARGET" --target-dir "$MUSL_DIR" -p anvil-server

ANVIL_BIN="$MUSL_DIR/$TARGET/release/anvil"
# A dynamically linked binary would not start in a FROM-scratch image (no loader, no libc).
if file "$ANVIL_BIN" | grep -q "dynamically linked"; then
  echo "error: $ANVIL_BIN is dynamically linked; the image needs a static binary" >&2
  exit 1
fi

# ---- the labeling app
if [ "${ANVIL_IMAGE_SKIP_SPA:-}" = 1 ]; then
  [ -f spa/dist/index.html ] || { echo "error: ANVIL_IMAGE_SKIP_SPA=1 but spa/dist is not built" >&2; exit 1; }
else
  log "bash spa/build.sh"
  bash spa/build.sh
fi

# ---- stage the build context (infra/Containerfile.dockerignore admits only target/image)
log "staging $STAGE"
rm -rf "$STAGE"
mkdir -p "$STAGE/rootfs/data" "$STAGE/spa"
cp "$ANVIL_BIN" "$STAGE/anvil"
cp -R spa/dist/. "$STAGE/spa/"
cp /etc/ssl/certs/ca-certificates.crt "$STAGE/ca-certificates.crt"
printf 'root:x:0:0:root:/root:/sbin/nologin\nanvil:x:65532:65532:anvil:/data:/sbin/nologin\n' >"$STAGE/passwd"
printf 'root:x:0:\nanvil:x:65532:\n' >"$STAGE/group"
chmod 0755 "$STAGE/anvil"
chmod 0700 "$STAGE/rootfs/data"
chmod -R a+rX "$STAGE/spa"
chmod 0644 "$STAGE/ca-certificates.crt" "$STAGE/passwd" "$STAGE/group"

# ---- the image (Docker format keeps the HEALTHCHECK; OCI format would drop it)
VERSION="$("$ANVIL_BIN" --version | awk '{print $2}')+$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
# --layers=false: one layer and no intermediate images (vfs keeps a full copy of each).
previous=$("${PODMAN[@]}" image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true)
log "podman build $IMAGE ($VERSION)"
"${PODMAN[@]}" build --format docker --layers=false --ignorefile infra/Containerfile.dockerignore \
  --build-arg "VERSION=$VERSION" -t "$IMAGE" -f infra/Containerfile .
current=$("${PODMAN[@]}" image inspect --format '{{.Id}}' "$IMAGE")
if [ -n "$previous" ] && [ "$previous" != "$current" ]; then
  # the untagged previous build (kept if a container still uses it)
  "${PODMAN[@]}" rmi "$previous" >/dev/null 2>&1 || true
fi

size=$("${PODMAN[@]}" image inspect --format '{{.Size}}' "$IMAGE")
printf 'image %s: %s bytes (%s MB); anvil binary %s bytes, spa %s bytes\n' "$IMAGE" "$size" \
  "$(awk -v s="$size" 'BEGIN { printf "%.1f", s / 1000000 }')" \
  "$(wc -c <"$ANVIL_BIN")" "$(du -sb "$STAGE/spa" | cut -f1)"
