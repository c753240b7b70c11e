#!/usr/bin/env bash
# Runs the whole test suite: formatting, lints, unit and integration tests, the tus conformance
# suite (in-process on local disk and on S3, then against separately started tuskd binaries on
# local disk, S3 and Azure), real clients (tus-js-client under Node, on local disk and on S3;
# Uppy in headless Chromium), the media pipeline end to end (clips made with GStreamer, on local
# disk and S3), the container image (scripts/test-container.sh: podman, hadolint, podman-compose),
# a build without the media feature, a build of the fuzz targets (cargo-fuzz, nightly; scripts/fuzz.sh
# runs them) and a smoke run of the benchmark. The S3-compatible server is moto's, from PyPI;
# Azure is Azurite, Azure's emulator, from npm; both on 127.0.0.1.
# Installs what it needs and skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
need_server
need_clamav
need_node
[ -x "${CHROMIUM:-/usr/bin/chromium}" ] || apt_install chromium
need_moto
need_postgres
need_haproxy
command -v curl >/dev/null 2>&1 || apt_install curl
# The auth tests make their keys with openssl.
command -v openssl >/dev/null 2>&1 || apt_install openssl
# The upload command's progress bar is tested in a terminal that tmux records.
command -v tmux >/dev/null 2>&1 || apt_install tmux
# Chunked videos' outputs are checked with ffprobe over HTTP; the benchmark's video reference
# is ffmpeg.
command -v ffprobe >/dev/null 2>&1 || apt_install ffmpeg
# HEIC and AVIF test pictures are made with libheif's and libavif's encoders.
command -v heif-enc >/dev/null 2>&1 || apt_install libheif-examples
command -v avifenc >/dev/null 2>&1 || apt_install libavif-bin

# The tests say what they need of free space (tests/disk_full.rs sets its own reserve on the
# filesystems it mounts); the others run whatever this machine's disk holds, not the default
# reserve of 1 GiB, which a shared CI disk can be below (every upload would be 507).
export TUSKD_MIN_FREE_SPACE=0
# The suite is built once: incremental compilation's caches would only take disk.
export CARGO_INCREMENTAL=0
echo "==> free space: $(df -h --output=avail . | tail -1 | tr -d ' ') here"

scratch=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$scratch" "${pg_dir:-}"
}
trap cleanup EXIT

# start_tuskd NAME ARGS...: starts the debug binary, waits until it listens, sets $url.
start_tuskd() {
  local name=$1; shift
  local log="$scratch/$name.log"
  mkdir -p "$scratch/$name"
  # --media off: the protocol suites upload bytes that are no media (the pipeline would
  # reject and delete them).
  ./target/debug/tuskd serve --listen 127.0.0.1:0 --data-dir "$scratch/$name" --fsync off \
    --max-size 1GiB --media off "$@" >/dev/null 2>"$log" &
  pids+=($!)
  local pid=$!
  for _ in $(seq 1 200); do
    grep -q "listening on" "$log" 2>/dev/null && break
    kill -0 "$pid" 2>/dev/null || { cat "$log"; exit 1; }
    sleep 0.05
  done
  url=$(grep -o "listening on http://[^ ]*" "$log" | head -1 | cut -d' ' -f3)
}

echo "==> npm packages for the client tests and Azurite"
(
  cd tests/js
  # npm ls fails when a dependency is missing or not the pinned version.
  npm ls --depth=0 >/dev/null 2>&1 || npm install --no-package-lock --no-audit --no-fund
)

echo "==> cargo fmt --check"
cargo fmt --all --check
echo "==> cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "==> cargo test (the S3 and Azure tests start their own moto and Azurite servers; the media"
echo "    tests make their clips with GStreamer)"
cargo test --workspace --locked

echo "==> moto's S3 server for the runs below"
s3_port=$(free_port)
"$TUSKD_TEST_PYTHON" -m moto.server -H 127.0.0.1 -p "$s3_port" >"$scratch/moto.log" 2>&1 &
pids+=($!)
export AWS_ENDPOINT_URL="http://127.0.0.1:$s3_port" AWS_ALLOW_HTTP=true AWS_REGION=us-east-1 \
  AWS_ACCESS_KEY_ID=tuskd-test AWS_SECRET_ACCESS_KEY=tuskd-test-secret
for _ in $(seq 1 400); do
  curl -s -o /dev/null "$AWS_ENDPOINT_URL/" && break
  sleep 0.05
done
curl -sf -X PUT "$AWS_ENDPOINT_URL/spec" -o /dev/null

echo "==> spec-tests in-process on S3 (TUSKD_SPEC_STORE)"
TUSKD_SPEC_STORE=s3://spec/in-process cargo test -p spec-tests --locked

echo "==> spec-tests against a running tuskd binary on local disk (TUSKD_SPEC_URL)"
start_tuskd local
TUSKD_SPEC_URL="$url" cargo test -p spec-tests --locked

echo "==> spec-tests against a running tuskd binary with --store s3://"
s3_args=(--store s3://spec/binary --part-size 5MiB)
start_tuskd s3 "${s3_args[@]}"
TUSKD_SPEC_URL="$url" cargo test -p spec-tests --locked

echo "==> spec-tests against a running tuskd binary on Postgres (--meta) and S3"
pg_dir=$(mktemp -d)
pg_port=$(free_port)
pids+=("$(start_postgres "$pg_dir" "$pg_port")")
start_tuskd pg --meta "postgres://postgres@127.0.0.1:$pg_port/postgres" --store s3://spec/pg \
  --part-size 5MiB
TUSKD_SPEC_URL="$url" cargo test -p spec-tests --locked

echo "==> spec-tests against a running tuskd binary with --store az:// (Azurite)"
az_port=$(free_port)
tests/js/node_modules/.bin/azurite-blob --blobHost 127.0.0.1 --blobPort "$az_port" --silent \
  --skipApiVersionCheck --location "$scratch/azurite" >"$scratch/azurite.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 400); do
  (exec 3<>"/dev/tcp/127.0.0.1/$az_port") 2>/dev/null && break
  sleep 0.05
done
node tests/js/azure-container.mjs "$az_port" spec
AZURE_STORAGE_USE_EMULATOR=true AZURITE_BLOB_STORAGE_URL="http://127.0.0.1:$az_port" \
  start_tuskd azure --store az://spec/binary
TUSKD_SPEC_URL="$url" cargo test -p spec-tests --locked

echo "==> the demo page's bundle (examples/web: Uppy, hls.js; esbuild)"
(
  cd examples/web
  npm ls --depth=0 >/dev/null 2>&1 || npm install --no-package-lock --no-audit --no-fund
  npm run build
)

echo "==> real clients: tus-js-client under Node, Uppy in headless Chromium, the demo page"
(
  cd tests/js
  export TUSKD_BIN="$PWD/../../target/debug/tuskd"
  npm test
  echo "==> tus-js-client with --store s3://"
  TUSKD_EXTRA_ARGS="${s3_args[*]/binary/js}" node --test tus-js-client.test.mjs
)
echo "==> the container image with podman: hadolint, build, uploads, media, restart, compose + clamd"
if [ "$(id -u)" -eq 0 ]; then
  bash scripts/test-container.sh
else
  echo "skipped: podman and debootstrap need root here (run scripts/test-container.sh as root)"
fi

echo "==> fuzz targets build (cargo-fuzz on nightly; scripts/fuzz.sh runs them)"
need_cargo_fuzz
(cd fuzz && cargo +nightly fuzz build --dev)
# Only the build is checked here: its artifacts go, for the disk the stages below need.
rm -rf fuzz/target

echo "==> benchmark smoke run (small sizes; real figures: see README)"
# The images row's reference: vips, timed by GNU time.
apt_install libvips-tools time
cargo run -q -p tuskd-bench --locked -- --quick --runs 1 --s3 --hooks --stalled --images --observability --wake --auth \
  --tuskd target/debug/tuskd

# Last: this build replaces target/debug/tuskd with one that has no media pipeline.
echo "==> without the media pipeline: tuskd builds and its tests pass with no GStreamer crates"
cargo test -p tuskd --locked --no-default-features --lib --tests

echo "==> all tests passed ($((SECONDS / 60)) min $((SECONDS % 60)) s)"
