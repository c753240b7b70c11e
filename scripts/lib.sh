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
