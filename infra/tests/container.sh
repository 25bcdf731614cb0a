#!/usr/bin/env bash
# Container tests of Anvil: builds the image (infra/image-build.sh), then runs infra/tests/container_test.py
# against it — the image's defaults on a published port, migrate/serve/worker on Postgres + moto S3, SIGTERM
# under load, /health/ready during a Postgres outage, the air-gapped run (--network none, strace'd), and the
# compose/k8s files against their schemas. Starts and removes everything it uses; talks to 127.0.0.1 and Unix
# sockets only. Last line: `N passed, N failed`; exits non-zero on any failure. Run as root (podman, nsenter,
# strace, initdb via runuser). Works from any directory.
#
#   bash infra/tests/container.sh
#   ANVIL_CT_SKIP_BUILD=1 bash infra/tests/container.sh     # test the image already built
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
source infra/lib.sh

export CONTAINERS_CONF="$ROOT/infra/containers.conf"
export ANVIL_IMAGE="${ANVIL_IMAGE:-localhost/anvil:dev}"
MOTO_VERSION=5.2.5
INFRA_VENV="$ROOT/target/infra-venv"
PODMAN=(podman --storage-driver vfs)

ensure_postgres
apt_install podman buildah runc musl-tools util-linux strace curl iproute2 file

if [ "${ANVIL_CT_SKIP_BUILD:-}" != 1 ]; then
  bash infra/image-build.sh
fi
export ANVIL_HOST_BIN="$ROOT/target/musl/x86_64-unknown-linux-musl/release/anvil"
[ -x "$ANVIL_HOST_BIN" ] || { echo "error: $ANVIL_HOST_BIN missing: run infra/image-build.sh" >&2; exit 1; }

# moto's S3 server (the repository's shared .venv, as the other tests use it)
if ! .venv/bin/python -c "import moto, sys; sys.exit(moto.__version__ != '$MOTO_VERSION')" 2>/dev/null; then
  log "pip install moto[server]==$MOTO_VERSION"
  [ -x .venv/bin/python ] || python3 -m venv .venv
  .venv/bin/pip install -q "moto[server]==$MOTO_VERSION"
fi
export MOTO_SERVER="$ROOT/.venv/bin/moto_server"

# schema checkers for compose.yaml (compose-spec) and infra/k8s (Kubernetes 1.30 OpenAPI), offline
if [ ! -x "$INFRA_VENV/bin/kubernetes-validate" ] || [ ! -x "$INFRA_VENV/bin/check-jsonschema" ]; then
  log "pip install kubernetes-validate check-jsonschema"
  python3 -m venv "$INFRA_VENV"
  "$INFRA_VENV/bin/pip" install -q kubernetes-validate==1.37.0 check-jsonschema==0.39.0
fi
export INFRA_VENV

# containers left by an interrupted earlier run (only ours: the anvil-ct- prefix)
stale=$("${PODMAN[@]}" ps -a --filter name=anvil-ct- --format '{{.Names}}' 2>/dev/null || true)
if [ -n "$stale" ]; then
  # shellcheck disable=SC2086
  "${PODMAN[@]}" rm -f -v -t 0 $stale >/dev/null 2>&1 || true
fi

log "container tests ($ANVIL_IMAGE)"
exec timeout --signal=INT 900 python3 -u infra/tests/container_test.py
