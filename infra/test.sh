#!/usr/bin/env bash
# Runs Anvil's whole test suite against real parts: unit and integration tests over Postgres and SQLite,
# S3/SQS/Secrets Manager through the aws-sdk clients against moto on loopback, the Lambda functions on a local
# Runtime API, the container image under podman, and the labeling app in headless Chromium. Starts and installs
# what it needs (Postgres on 127.0.0.1:5432 if none answers, a .venv with moto/cfn-lint/cargo-lambda, Chromium).
set -euo pipefail
cd "$(dirname "$0")/.."
source infra/lib.sh

ensure_postgres
ensure_python_tools
export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"

log "vendored code = registry release + its patch"
bash functions/shared/patches/vendor-sqlx-core.sh --check

log "dependency boundaries (what each binary links, anvil-core's features)"
bash infra/tests/boundaries.sh

log "cargo test --workspace"
cargo test --workspace --locked

if [ -f template.yaml ]; then
    log "cfn-lint template.yaml"
    cfn-lint template.yaml
fi

if [ -f infra/tests/container.sh ]; then
    log "container image under podman"
    bash infra/tests/container.sh
fi

log "labeling app in headless Chromium"
# Each browser test starts its own `anvil serve --demo` on a fresh embedded data directory; on the shared
# Postgres database the demo tenant would keep the labels of earlier runs and the counts would not hold.
env -u DATABASE_URL bash spa/e2e/run.sh
