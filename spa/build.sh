#!/usr/bin/env bash
# Builds the SPA into spa/dist without trunk: cargo (wasm32, release) -> wasm-bindgen -> wasm-opt -Oz, plus
# index.html, boot.js and style.css. Installs what is missing, each tool guarded by its version. Prints the
# gzipped size of what a browser downloads (wasm + js). Works from any directory.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

WASM_BINDGEN_VERSION=0.2.130   # must equal the wasm-bindgen version in spa/Cargo.lock
BINARYEN_VERSION=132           # Debian's binaryen (108) cannot read current wasm
OUT=spa/dist
NICE="nice -n 10"

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  rustup target add wasm32-unknown-unknown
fi
if ! wasm-bindgen --version 2>/dev/null | grep -q "$WASM_BINDGEN_VERSION"; then
  # about 3 minutes; --locked fails for this version
  $NICE cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION"
fi
if ! tools/node_modules/.bin/wasm-opt --version 2>/dev/null | grep -q "version $BINARYEN_VERSION"; then
  npm install --no-audit --no-fund --prefix tools "binaryen@$BINARYEN_VERSION"
fi

(cd spa && $NICE cargo build --target wasm32-unknown-unknown --release)

rm -rf "$OUT"
mkdir -p "$OUT"
wasm-bindgen --target web --no-typescript --out-dir "$OUT" --out-name anvil_spa \
  spa/target/wasm32-unknown-unknown/release/anvil-spa.wasm
tools/node_modules/.bin/wasm-opt -Oz --enable-bulk-memory --enable-nontrapping-float-to-int \
  --enable-sign-ext --enable-mutable-globals --enable-reference-types --enable-multivalue \
  -o "$OUT/anvil_spa_bg.opt.wasm" "$OUT/anvil_spa_bg.wasm"
mv "$OUT/anvil_spa_bg.opt.wasm" "$OUT/anvil_spa_bg.wasm"
cp spa/index.html spa/boot.js spa/style.css spa/config.json "$OUT/"

gz() { gzip -9c "$1" | wc -c; }
wasm_gz=$(gz "$OUT/anvil_spa_bg.wasm")
js_gz=$(( $(gz "$OUT/anvil_spa.js") + $(gz "$OUT/boot.js") ))
css_gz=$(gz "$OUT/style.css")
printf 'spa bundle: wasm %s B raw, %s B gzip; js %s B gzip; css %s B gzip\n' \
  "$(wc -c < "$OUT/anvil_spa_bg.wasm")" "$wasm_gz" "$js_gz" "$css_gz"
printf 'spa bundle size (wasm + js, gzip -9): %d bytes (%d KiB)\n' \
  $(( wasm_gz + js_gz )) $(( (wasm_gz + js_gz + 1023) / 1024 ))
