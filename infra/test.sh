#!/usr/bin/env bash
# Runs Anvil's whole test suite: unit and integration tests against real Postgres and SQLite, then the
# browser tests of the labeling app. Starts what it needs (Postgres on 127.0.0.1:5432 if none answers).
set -euo pipefail
cd "$(dirname "$0")/.."
source infra/lib.sh

ensure_postgres
export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"

log "cargo test --workspace"
cargo test --workspace --locked

if [ -x spa/e2e/run.sh ] || [ -f spa/e2e/run.sh ]; then
    log "labeling app in headless Chromium"
    bash spa/e2e/run.sh
fi
