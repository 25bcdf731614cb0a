#!/usr/bin/env bash
# Re-vendors functions/shared/patches/sqlx-core: the crates.io release of sqlx-core named below, unpacked from
# cargo's own download (the registry is the only source), with sqlx-core.patch applied and nothing else.
#
#   bash functions/shared/patches/vendor-sqlx-core.sh           # (re)write the vendored copy
#   bash functions/shared/patches/vendor-sqlx-core.sh --check   # fail if the copy is not exactly release + patch
#
# To move to a new sqlx release: set VERSION, run it, fix sqlx-core.patch if it no longer applies (or drop the
# copy and the [patch.crates-io] entry when upstream carries the change), update Cargo.lock.
set -euo pipefail
VERSION=0.9.1
here="$(cd "$(dirname "$0")" && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# Let cargo download the release into its cache (a throwaway package that depends on exactly that version).
mkdir -p "$tmp/fetch/src"
printf '[package]\nname = "fetch-sqlx-core"\nversion = "0.0.0"\nedition = "2021"\n[dependencies]\nsqlx-core = "=%s"\n[workspace]\n' \
    "$VERSION" > "$tmp/fetch/Cargo.toml"
: > "$tmp/fetch/src/lib.rs"
(cd "$tmp/fetch" && cargo fetch --quiet)
crate=""
for c in "${CARGO_HOME:-$HOME/.cargo}"/registry/cache/*/"sqlx-core-$VERSION.crate"; do
    [ -f "$c" ] && crate="$c" && break
done
[ -n "$crate" ] || { echo "sqlx-core-$VERSION.crate not found in cargo's registry cache" >&2; exit 1; }

tar -xzf "$crate" -C "$tmp"
src="$tmp/sqlx-core-$VERSION"
rm -f "$src/.cargo_vcs_info.json" "$src/.cargo-ok"
(cd "$src" && patch --quiet -p1 --no-backup-if-mismatch < "$here/sqlx-core.patch")

if [ "${1:-}" = "--check" ]; then
    if diff -r "$src" "$here/sqlx-core" > "$tmp/diff"; then
        echo "functions/shared/patches/sqlx-core = sqlx-core $VERSION + sqlx-core.patch"
    else
        head -40 "$tmp/diff" >&2
        echo "functions/shared/patches/sqlx-core differs from sqlx-core $VERSION + sqlx-core.patch: run $0" >&2
        exit 1
    fi
else
    rm -rf "$here/sqlx-core"
    cp -a "$src" "$here/sqlx-core"
    echo "vendored sqlx-core $VERSION + sqlx-core.patch into $here/sqlx-core"
fi
