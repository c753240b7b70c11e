# Shared helpers for tuskd's scripts: install what is missing, skip what is there.

# apt_install PKG...: installs the Debian packages that are not installed yet.
apt_install() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "==> installing ${missing[*]}"
  $sudo apt-get update -qq
  for attempt in 1 2 3; do
    if $sudo env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq "${missing[@]}"; then
      return 0
    fi
    echo "apt-get install failed (attempt $attempt); retrying" >&2
    sleep $((attempt * 5))
  done
  echo "could not install ${missing[*]}" >&2
  return 1
}

# need_rust: a Rust toolchain new enough for tuskd (see rust-version in Cargo.toml).
need_rust() {
  if ! command -v cargo >/dev/null 2>&1; then
    echo "tuskd needs Rust 1.89 or newer (cargo, rustc, rustfmt, clippy); install it with rustup and re-run." >&2
    exit 1
  fi
  # -sys crates (SQLite is built from source) need a C compiler.
  command -v cc >/dev/null 2>&1 || apt_install build-essential
}

# need_moto: a Python with moto's S3 server (from PyPI) in a virtualenv under target/, for the
# tests that need an S3-compatible store. Exports TUSKD_TEST_PYTHON, which the tests use.
need_moto() {
  local venv="$PWD/target/test-python"
  if [ ! -x "$venv/bin/python" ]; then
    command -v python3 >/dev/null 2>&1 || apt_install python3
    python3 -m venv "$venv" 2>/dev/null || { apt_install python3-venv && python3 -m venv "$venv"; }
  fi
  if ! "$venv/bin/python" -c 'import moto.server' 2>/dev/null; then
    echo "==> installing moto's S3 server from PyPI"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check 'moto[server]==5.2.5'
  fi
  export TUSKD_TEST_PYTHON="$venv/bin/python"
}

# free_port: prints a free TCP port on 127.0.0.1.
free_port() {
  "${TUSKD_TEST_PYTHON:-python3}" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# need_cargo_fuzz: cargo-fuzz (crates.io) and the nightly toolchain it builds with.
need_cargo_fuzz() {
  if ! rustup toolchain list | grep -q '^nightly'; then
    echo "the fuzz targets need the nightly toolchain: rustup toolchain install nightly" >&2
    exit 1
  fi
  command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked --quiet
}

# need_gstreamer: GStreamer 1.22 (Debian) with the plugins the media pipeline uses (x264, AAC,
# HLS, the decoders of libav) and the development files the gstreamer crates build against;
# gst-launch-1.0 and gst-discoverer-1.0 come with the tools.
need_gstreamer() {
  apt_install pkg-config libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev \
    libgstreamer-plugins-bad1.0-dev gstreamer1.0-plugins-base gstreamer1.0-plugins-good \
    gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav gstreamer1.0-tools \
    gstreamer1.0-plugins-base-apps
}

# need_clamav: Debian's clamd, which the malware-scan tests start themselves (no daemon, no
# signature download: the tests make their own database).
need_clamav() {
  apt_install clamav-daemon
}

# need_poppler: poppler's pdftoppm, which renders a PDF's first page for its previews.
need_poppler() {
  apt_install poppler-utils
}
