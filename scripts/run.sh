#!/usr/bin/env bash
# Builds tuskd and runs the server with the embedded defaults (local disk + SQLite under ./data).
# Any flags are passed to `tuskd serve`, e.g. scripts/run.sh --listen 0.0.0.0:1080 --max-size 10GiB
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
need_server
cargo build --release --locked --bin tuskd
exec ./target/release/tuskd serve "$@"
