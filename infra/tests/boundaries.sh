#!/usr/bin/env bash
# What each binary may link, checked on the dependency graph cargo resolves for it alone (as `sam build` and
# infra/lambda-build.sh build them): the job functions carry no HTTP layer, no Lambda function carries the
# SQLite store, and anvil-core builds with each store on its own (its Cargo features, src/compose.rs).
set -euo pipefail
cd "$(dirname "$0")/../.."
fail=0
forbid() { # forbid PACKAGE CRATE WHY
    local found
    found=$(cargo tree --locked -q -p "$1" -e normal,build -i "$2" 2>/dev/null | head -1 || true)
    if [ -n "$found" ]; then
        echo "FAIL: $1 depends on $2 ($3):" >&2
        cargo tree --locked -q -p "$1" -e normal,build -i "$2" | head -12 >&2
        fail=1
    else
        echo "ok: $1 has no $2"
    fi
}
for f in worker migrate; do
    forbid "anvil-fn-$f" anvil-api "a job function has no HTTP layer"
    forbid "anvil-fn-$f" axum "a job function has no HTTP layer"
done
for f in assignments labels health queues exports worker migrate; do
    forbid "anvil-fn-$f" sqlx-sqlite "SQLite is not for Lambda"
    forbid "anvil-fn-$f" libsqlite3-sys "SQLite is not for Lambda"
done
forbid anvil-fn-migrate aws-sdk-s3 "migrate calls no AWS service but Secrets Manager"
[ "$fail" = 0 ] || exit 1

# anvil-core with one store and no AWS (the smallest builds the features allow).
for features in sqlite postgres; do
    echo "==> cargo check -p anvil-core --features $features" >&2
    cargo check --locked -q -p anvil-core --lib --features "$features"
done
echo "dependency boundaries hold"
