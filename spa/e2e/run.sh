#!/usr/bin/env bash
# Browser end-to-end tests of the SPA against the real `anvil serve --demo`: builds the server (debug) and the
# SPA (release, prints the bundle size) and runs its unit tests, installs what is missing (Chromium from Debian, playwright-core and
# oidc-provider, the OpenID provider of sign-in.test.mjs, from npm; never a downloaded browser), then runs every spa/e2e/*.test.mjs with node's test runner, one file at a
# time (each file starts its own server on a free port with a fresh data directory). The last lines printed
# are node's summary (`# pass N`, `# fail N`). Honours DATABASE_URL (Postgres) when set; otherwise the server
# uses its embedded SQLite store in the fresh data directory.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

if [ ! -x /usr/bin/chromium ] && [ -z "${CHROMIUM_PATH:-}" ]; then
  apt-get install -y chromium || { apt-get update && apt-get install -y chromium; }
fi
if ! (cd spa/e2e && npm ls playwright-core oidc-provider >/dev/null 2>&1); then
  (cd spa/e2e && npm ci --no-audit --no-fund)
fi

nice -n 10 cargo build -p anvil-server
bash spa/build.sh
# the SPA's own unit tests (its model: payloads, span cursor, JSON Lines), natively
(cd spa && nice -n 10 cargo test --quiet)

mkdir -p spa/e2e/artifacts
exec node --test --test-concurrency=1 --test-reporter=tap spa/e2e/*.test.mjs
