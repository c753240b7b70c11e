#!/usr/bin/env bash
# The container image, end to end with podman: hadolint on the Dockerfile; the image built from
# it; tus-js-client uploading through the published port and the bytes read back by SHA-256;
# media jobs (video, audio, image, PDF) to READY inside the container, so its GStreamer plugins
# and poppler are proven sufficient; a restart that keeps an unfinished upload, which the
# client then resumes; a non-root server; the health check turning healthy; the image size.
# Then examples/compose.yaml under podman-compose: an EICAR upload rejected by the clamd sidecar.
#
# No public registry is reachable from the test machines, so the base images are made here: a
# Debian bookworm made with debootstrap and trimmed as debian:bookworm-slim is (it stands in for
# the runtime image), and the same with this machine's Rust toolchain (for rust:1-bookworm).
# Run by scripts/test.sh; needs root (podman, debootstrap) and the npm packages of tests/js.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
need_podman
need_container_tools

base=localhost/tuskd-test/bookworm-slim
rust=localhost/tuskd-test/rust:bookworm
image=localhost/tuskd:test
clamd_image=localhost/tuskd-test/clamd
run="tuskd-test-$$"
volume="tuskd-test-data-$$"
project="tuskd-test-$$"
scratch=$(mktemp -d)
cleanup() {
  podman rm -f -t 0 "$run" >/dev/null 2>&1 || true
  podman volume rm -f "$volume" >/dev/null 2>&1 || true
  if [ -f "$scratch/compose.env" ]; then
    (set -a; . "$scratch/compose.env"; podman-compose -p "$project" -f examples/compose.yaml down -v -t 0 \
      >/dev/null 2>&1) || true
  fi
  rm -rf "$scratch"
}
trap cleanup EXIT

client() { node tests/js/container-client.mjs "$@"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

# wait_healthy NAME: runs the image's health check until it passes (podman runs scheduled checks
# through systemd timers, which a machine without systemd lacks), then reads the recorded state.
wait_healthy() {
  local name=$1
  for _ in $(seq 1 120); do
    if podman healthcheck run "$name" >/dev/null 2>&1; then
      local state
      state=$(podman inspect --format '{{.State.Health.Status}}' "$name")
      [ "$state" = healthy ] || fail "$name: the check passed but the state is $state"
      echo "$name: healthy"
      return 0
    fi
    [ "$(podman inspect --format '{{.State.Running}}' "$name")" = true ] || {
      podman logs "$name" | tail -20; fail "$name exited"; }
    sleep 0.5
  done
  podman logs "$name" | tail -20
  fail "$name did not turn healthy"
}

echo "==> hadolint"
hadolint Dockerfile
hadolint tests/container/clamd.Containerfile

echo "==> base images (debootstrap)"
make_base_images "$base" "$rust"

echo "==> podman build (the Dockerfile at the top level)"
start=$(date +%s)
podman build --format docker --build-arg "RUST_IMAGE=$rust" --build-arg "RUNTIME_IMAGE=$base" \
  --build-arg "REVISION=$(git rev-parse HEAD 2>/dev/null || echo unknown)" -t "$image" . \
  >"$scratch/build.log" 2>&1 || { tail -40 "$scratch/build.log"; fail "podman build"; }
echo "built in $(($(date +%s) - start)) s"
size=$(podman image inspect --format '{{.Size}}' "$image")
base_size=$(podman image inspect --format '{{.Size}}' "$base")
echo "image size: $((size / 1000000)) MB ($((base_size / 1000000)) MB of it the bookworm-slim stand-in)"

echo "==> the container: non-root, healthy"
podman volume create "$volume" >/dev/null
port=$(free_port)
podman run -d --name "$run" -p "127.0.0.1:$port:1080" -v "$volume:/data" \
  -e TUSKD_MAX_SIZE=1GiB "$image" >/dev/null 2>>"$scratch/podman.log"
wait_healthy "$run"
uid=$(podman exec "$run" id -u)
[ "$uid" != 0 ] || fail "the server runs as root"
server_user=$(podman top "$run" user | awk 'NR == 2 { print $1 }')
[ "$server_user" = tuskd ] || fail "the server process runs as $server_user"
echo "runs as $server_user (uid $uid)"
endpoint="http://127.0.0.1:$port/files/"

echo "==> media made with GStreamer on the host"
gst-launch-1.0 -q videotestsrc num-buffers=60 ! video/x-raw,width=1280,height=720,framerate=30/1 \
  ! x264enc bitrate=16000 ! h264parse ! queue ! mp4mux name=m ! filesink location="$scratch/clip.mp4" \
  audiotestsrc num-buffers=90 ! audioconvert ! voaacenc ! aacparse ! queue ! m.
gst-launch-1.0 -q videotestsrc num-buffers=30 ! video/x-raw,width=320,height=240,framerate=15/1 \
  ! vp8enc ! queue ! webmmux name=w ! filesink location="$scratch/clip.webm" \
  audiotestsrc num-buffers=60 ! audioconvert ! opusenc ! queue ! w.
gst-launch-1.0 -q audiotestsrc wave=sine num-buffers=100 ! audioconvert ! lamemp3enc \
  ! filesink location="$scratch/tone.mp3"
gst-launch-1.0 -q videotestsrc num-buffers=1 pattern=smpte ! video/x-raw,width=800,height=600 \
  ! jpegenc ! filesink location="$scratch/photo.jpg"
client pdf "$scratch/doc.pdf"

echo "==> tus-js-client through the published port (1 MiB chunks); the bytes back by SHA-256"
url=$(client upload "$endpoint" "$scratch/clip.mp4" video/mp4)
[ "$(curl -sf "$url" | sha256sum)" = "$(sha256sum <"$scratch/clip.mp4")" ] || fail "bytes differ"
echo "uploaded $(stat -c %s "$scratch/clip.mp4") bytes and read them back: $url"

echo "==> media jobs inside the container"
# ready NAME URL: waits for URL's media job; prints the kinds of outputs it made.
ready() {
  local doc kinds
  doc=$(client media "$2" 240) || { podman logs "$run" 2>&1 | tail -20; fail "$1: $doc"; }
  kinds=$(echo "$doc" | node -e 'const d = JSON.parse(require("fs").readFileSync(0)); console.log([...new Set(d.variants.map((v) => v.kind))].join(","))')
  echo "$1: READY ($kinds)"
}
ready clip.mp4 "$url"
for f in clip.webm:video/webm tone.mp3:audio/mpeg photo.jpg:image/jpeg doc.pdf:application/pdf; do
  ready "${f%%:*}" "$(client upload "$endpoint" "$scratch/${f%%:*}" "${f#*:}")"
done

echo "==> restart with an unfinished upload on the volume; tus-js-client resumes it"
loc=$(curl -sf -D - -o /dev/null -X POST "$endpoint" -H 'Tus-Resumable: 1.0.0' \
  -H "Upload-Length: $(stat -c %s "$scratch/clip.mp4")" | tr -d '\r' | awk 'tolower($1) == "location:" { print $2 }')
[ -n "$loc" ] || fail "no Location"
case $loc in http*) ;; *) loc="http://127.0.0.1:$port$loc" ;; esac
head -c $((1024 * 1024)) "$scratch/clip.mp4" | curl -sf -o /dev/null -X PATCH "$loc" \
  -H 'Tus-Resumable: 1.0.0' -H 'Upload-Offset: 0' -H 'Content-Type: application/offset+octet-stream' \
  --data-binary @-
podman restart -t 40 "$run" >/dev/null 2>>"$scratch/podman.log"
wait_healthy "$run"
offset=$(curl -sf -I "$loc" -H 'Tus-Resumable: 1.0.0' | tr -d '\r' | awk 'tolower($1) == "upload-offset:" { print $2 }')
[ "$offset" = $((1024 * 1024)) ] || fail "after the restart the offset is '$offset'"
first=$(client resume "$loc" "$scratch/clip.mp4")
[ "$first" = "$offset" ] || fail "the client resumed at $first, not at $offset"
[ "$(curl -sf "$loc" | sha256sum)" = "$(sha256sum <"$scratch/clip.mp4")" ] || fail "resumed bytes differ"
echo "resumed at $first after the restart; SHA-256 matches"
podman rm -f -t 40 "$run" >/dev/null 2>>"$scratch/podman.log"

echo "==> examples/compose.yaml under podman-compose (clamd sidecar)"
podman build --format docker --build-arg "BASE_IMAGE=$base" -t "$clamd_image" \
  -f tests/container/clamd.Containerfile tests/container >"$scratch/clamd-build.log" 2>&1 \
  || { tail -20 "$scratch/clamd-build.log"; fail "clamd image"; }
cport=$(free_port)
mport=$(free_port)
printf 'TUSKD_IMAGE=%s\nCLAMD_IMAGE=%s\nTUSKD_PORT=%s\nTUSKD_METRICS_PORT=%s\n' \
  "$image" "$clamd_image" "$cport" "$mport" >"$scratch/compose.env"
(set -a; . "$scratch/compose.env"; podman-compose -p "$project" -f examples/compose.yaml up -d) \
  >"$scratch/compose.log" 2>&1 || { cat "$scratch/compose.log"; fail "podman-compose up"; }
wait_healthy "${project}_clamd_1"
wait_healthy "${project}_tuskd_1"
printf 'X5O!P%%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*' >"$scratch/eicar.com"
u=$(client upload "http://127.0.0.1:$cport/files/" "$scratch/eicar.com")
doc=$(client media "$u" 120 REJECTED) || fail "EICAR: $doc"
echo "$doc" | grep -q 'Tuskd-Eicar-Substring' || fail "EICAR rejected without the signature: $doc"
[ "$(curl -s -o /dev/null -w '%{http_code}' "$u")" = 404 ] || fail "the infected original is still served"
curl -sf "http://127.0.0.1:$mport/metrics" | grep -q '^tuskd_uploads_finished_total' \
  || fail "no metrics on the metrics listener"
echo "EICAR: REJECTED by the clamd sidecar, original deleted; metrics on their own port"

echo "==> container tests passed"
