#!/usr/bin/env bash
# Runs the whole test suite: formatting, lints, unit and integration tests, the tus conformance
# suite (in-process, then against a separately started tuskd binary), real clients
# (tus-js-client under Node, Uppy in headless Chromium), and a smoke run of the benchmark. Installs what it needs and skips
# what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
need_rust
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || apt_install nodejs npm
[ -x "${CHROMIUM:-/usr/bin/chromium}" ] || apt_install chromium

echo "==> cargo fmt --check"
cargo fmt --all --check
echo "==> cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "==> cargo test"
cargo test --workspace --locked

echo "==> spec-tests against a running tuskd binary (TUSKD_SPEC_URL)"
data=$(mktemp -d)
log="$data/tuskd.log"
./target/debug/tuskd serve --listen 127.0.0.1:0 --data-dir "$data" --fsync off --max-size 1GiB >/dev/null 2>"$log" &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$data"' EXIT
for _ in $(seq 1 200); do
  grep -q "listening on" "$log" 2>/dev/null && break
  kill -0 "$pid" 2>/dev/null || { cat "$log"; exit 1; }
  sleep 0.05
done
url=$(grep -o "listening on http://[^ ]*" "$log" | head -1 | cut -d' ' -f3)
TUSKD_SPEC_URL="$url" cargo test -p spec-tests --locked
kill "$pid"; wait "$pid" || true
trap - EXIT
rm -rf "$data"

echo "==> real clients: tus-js-client under Node, Uppy in headless Chromium"
(
  cd tests/js
  # npm ls fails when a dependency is missing or not the pinned version.
  npm ls --depth=0 >/dev/null 2>&1 || npm install --no-package-lock --no-audit --no-fund
  TUSKD_BIN="$PWD/../../target/debug/tuskd" npm test
)
echo "==> benchmark smoke run (small sizes; real figures: see README)"
cargo run -q -p tuskd-bench --locked -- --quick --runs 1 --tuskd target/debug/tuskd

echo "==> all tests passed"
