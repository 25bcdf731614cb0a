#!/usr/bin/env bash
# What each binary may link, checked on the dependency graph cargo resolves for it alone (as `sam build` and
# infra/lambda-build.sh build them): the job functions carry no HTTP layer, no Lambda function carries the
# SQLite store, and anvil-core builds with each store on its own (its Cargo features, src/compose.rs).
set -euo pipefail
cd "$(dirname "$0")/../.."
fail=0
# inverse PACKAGE CRATE: the path from CRATE up to PACKAGE in PACKAGE's own graph, empty when there is none.
# cargo answers a CRATE that is nowhere in the graph with an error that says so; any other error is a failure
# of the check itself, never a pass.
inverse() {
    local out err rc=0
    err=$(mktemp)
    out=$(cargo tree --locked -q -p "$1" -e normal,build -i "$2" 2>"$err") || rc=$?
    if [ "$rc" -ne 0 ] && ! grep -q "did not match any packages" "$err"; then
        cat "$err" >&2
        rm -f "$err"
        echo "FAIL: cargo tree -p $1 -i $2 did not run" >&2
        exit 1
    fi
    rm -f "$err"
    printf '%s' "$out"
}
forbid() { # forbid PACKAGE CRATE WHY
    local found
    found=$(inverse "$1" "$2")
    if [ -n "$found" ]; then
        echo "FAIL: $1 depends on $2 ($3):" >&2
        printf '%s\n' "$found" | head -12 >&2
        fail=1
    else
        echo "ok: $1 has no $2"
    fi
}
# The check sees what it forbids: an HTTP function does link anvil-api, anvil serve the SQLite store.
for pair in "anvil-fn-assignments anvil-api" "anvil-server sqlx-sqlite"; do
    # shellcheck disable=SC2086
    [ -n "$(inverse $pair)" ] || { echo "FAIL: cargo tree finds no $pair: the check cannot see a dependency" >&2; exit 1; }
done
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

# anvil-core with one store and no AWS (the smallest builds the features allow), lint-clean as the workspace
# build is: code that only one adapter uses must say so, or these builds warn about it.
for features in sqlite postgres; do
    echo "==> cargo clippy -p anvil-core --lib --features $features -- -D warnings" >&2
    cargo clippy --locked -q -p anvil-core --lib --features "$features" -- -D warnings
done
echo "dependency boundaries hold"
