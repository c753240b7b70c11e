#!/usr/bin/env bash
# The demo: tuskd with its media pipeline (local disk + SQLite under ./data) and the demo page
# (examples/web: Uppy, the processing status, an HLS player) on another origin. Installs what it
# needs (GStreamer and poppler from Debian, the page's packages from npm), bundles the page with
# esbuild, and prints the address to open. Flags are passed to `tuskd serve`.
#   TUSKD_PORT (1080) and PAGE_PORT (8080) choose the ports.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
need_server
need_node
(
  cd examples/web
  npm ls --depth=0 >/dev/null 2>&1 || npm install --no-package-lock --no-audit --no-fund
  npm run build
)
cargo build --release --locked --bin tuskd
tuskd_port=${TUSKD_PORT:-1080}
page_port=${PAGE_PORT:-8080}
./target/release/tuskd serve --listen "127.0.0.1:$tuskd_port" "$@" &
pid=$!
trap 'kill "$pid" 2>/dev/null || true' EXIT
echo "==> open http://127.0.0.1:$page_port/?endpoint=http://127.0.0.1:$tuskd_port/files/"
# esbuild's server stops when its stdin closes; this one stays open until Ctrl-C.
tail -f /dev/null | examples/web/node_modules/.bin/esbuild --servedir=examples/web \
  --serve="127.0.0.1:$page_port"
