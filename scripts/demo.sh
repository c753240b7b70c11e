#!/usr/bin/env bash
# The demo: tuskd with its media pipeline (local disk + SQLite under ./data) and the demo page
# (examples/web: Uppy, the processing status, an HLS player) on another origin. Installs what it
# needs (GStreamer and poppler from Debian, the page's packages from npm), bundles the page with
# esbuild, and prints the address to open. Flags are passed to `tuskd serve`.
# tuskd runs with --auth jwt: each start makes a throwaway HMAC secret (random, mode 600, in the
# data directory, removed on exit) and mints a token for the owner `demo` with `tuskd token`;
# the address printed carries it in its fragment (#token=…, which browsers never send to a
# server), and the page sends it as `Authorization: Bearer`. An --auth of your own (e.g.
# `scripts/demo.sh --auth none`, or TUSKD_AUTH) replaces all that: no secret, no token.
#   TUSKD_PORT (1080) and PAGE_PORT (8080) choose the ports, DEMO_TOKEN_TTL (12h) how long the
#   token is valid.
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

# Where the flags put the data directory, and whether they choose an --auth.
data_dir=${TUSKD_DATA_DIR:-./data}
own_auth=${TUSKD_AUTH:-}
prev=
for a in "$@"; do
  [ "$prev" = --data-dir ] && data_dir=$a
  case "$a" in
    --data-dir=*) data_dir=${a#--data-dir=} ;;
    --auth | --auth=*) own_auth=yes ;;
  esac
  prev=$a
done

secret=
auth=()
fragment=
if [ -z "$own_auth" ]; then
  mkdir -p "$data_dir"
  secret="$data_dir/demo-jwt-secret"
  rm -f "$secret"
  (umask 077 && head -c 32 /dev/urandom | base64 >"$secret")
  chmod 600 "$secret"
  auth=(--auth jwt --auth-jwt-secret-file "$secret")
  token=$(./target/release/tuskd token --secret-file "$secret" --sub demo --ttl "${DEMO_TOKEN_TTL:-12h}")
  fragment="#token=$token"
fi

./target/release/tuskd serve --listen "127.0.0.1:$tuskd_port" "${auth[@]}" "$@" &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; [ -z "$secret" ] || rm -f "$secret"' EXIT
echo "==> open http://127.0.0.1:$page_port/?endpoint=http://127.0.0.1:$tuskd_port/files/$fragment"
if [ -n "$fragment" ]; then
  echo "    (tuskd is on --auth jwt; the token after #token= is for the owner demo, valid for ${DEMO_TOKEN_TTL:-12h};"
  echo "    from the command line: target/release/tuskd upload FILE --url http://127.0.0.1:$tuskd_port/files/ --token TOKEN)"
fi
# esbuild's server stops when its stdin closes; this one stays open until Ctrl-C.
tail -f /dev/null | examples/web/node_modules/.bin/esbuild --servedir=examples/web \
  --serve="127.0.0.1:$page_port"
