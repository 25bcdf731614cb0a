#!/usr/bin/env bash
# Builds Anvil's Lambda functions with cargo-lambda, the `lambda` profile of Cargo.toml (small, fat LTO, panics
# unwind), into target/lambda/<name>/bootstrap (the layout `sam deploy` and `cargo lambda deploy` expect), and
# prints each binary's size.
#
#   infra/lambda-build.sh            x86_64 (the CI build)
#   infra/lambda-build.sh --arm64    aarch64, as template.yaml deploys them (Graviton); slower cross build
#   infra/lambda-build.sh --test     then runs each function's Runtime API test against these release
#                                    binaries (x86_64 only) and prints their start-up times
#
# Needs cargo-lambda (it brings zig): python3 -m venv .venv && .venv/bin/pip install cargo-lambda==1.9.2
set -euo pipefail
cd "$(dirname "$0")/.."

FUNCTIONS=(assignments labels health queues migrate exports worker)
arch=()
run_tests=""
for arg in "$@"; do
    case "$arg" in
        --arm64) arch=(--arm64) ;;
        --test) run_tests=1 ;;
        -h | --help) sed -n '2,10p' "$0"; exit 0 ;;
        *) echo "unknown argument: $arg (see --help)" >&2; exit 2 ;;
    esac
done
if [ -n "$run_tests" ] && [ ${#arch[@]} -gt 0 ]; then
    echo "--test runs the binaries on this machine: build x86_64 for it" >&2
    exit 2
fi

if ! cargo lambda --version >/dev/null 2>&1; then
    if [ -x .venv/bin/cargo-lambda ]; then
        export PATH="$PWD/.venv/bin:$PATH"
    else
        echo "cargo-lambda not found: python3 -m venv .venv && .venv/bin/pip install cargo-lambda==1.9.2" >&2
        exit 1
    fi
fi

# aws-lc (the TLS and crypto library of sqlx, the AWS SDK and jsonwebtoken) seeds its random generator from
# CPU jitter entropy, sampled in unoptimized timing loops on the first random number of a process: ~25 ms of
# every cold start (strace: between Postgres's TLS "S" and our ClientHello). The Lambda binaries seed it from
# the kernel (getrandom) alone, as ring and OpenSSL do.
export AWS_LC_SYS_NO_JITTER_ENTROPY=1

# Two cargo invocations: the HTTP functions, then the job functions. Cargo unites the features of every
# package one invocation builds, so building them together would compile anvil-lambda's `http` feature (and
# anvil-api, axum) into the worker and migrate functions too; built apart, each gets only what it asks for,
# as `sam build` (one function per invocation) gives them.
HTTP_FUNCTIONS=(assignments labels health queues exports)
JOB_FUNCTIONS=(migrate worker)
start=$(date +%s)
for group in HTTP_FUNCTIONS JOB_FUNCTIONS; do
    declare -n members="$group"
    bins=()
    for f in "${members[@]}"; do bins+=(--bin "$f"); done
    echo "==> cargo lambda build --profile lambda ${arch[*]:-(x86_64)} ${members[*]}" >&2
    nice -n 10 cargo lambda build --profile lambda --locked "${arch[@]}" "${bins[@]}"
    unset -n members
done
echo "==> built in $(($(date +%s) - start)) s" >&2

out="${CARGO_TARGET_DIR:-target}/lambda"
case "$out" in /*) ;; *) out="$PWD/$out" ;; esac
printf '%-12s %10s  %s\n' function bytes binary
for f in "${FUNCTIONS[@]}"; do
    bin="$out/$f/bootstrap"
    kind=$(file -b "$bin" 2>/dev/null | cut -d, -f1-2 || true)
    bytes=$(stat -c %s "$bin")
    printf '%-12s %10s  %s (%s MiB; %s)\n' "$f" "$bytes" "$bin" \
        "$(awk -v b="$bytes" 'BEGIN { printf "%.1f", b / 1048576 }')" "${kind:-?}"
done

if [ -n "$run_tests" ]; then
    echo "==> Runtime API tests against the release binaries" >&2
    packages=()
    for f in "${FUNCTIONS[@]}"; do packages+=(-p "anvil-fn-$f"); done
    ANVIL_LAMBDA_BIN_DIR="$out" nice -n 10 cargo test --locked "${packages[@]}" --test runtime_api
fi
