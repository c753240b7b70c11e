#!/usr/bin/env bash
# Runs each fuzz target (fuzz/fuzz_targets) for SECONDS (default 600) with cargo-fuzz on the
# nightly toolchain, starting from fuzz/seeds/<target> and the corpus kept in
# fuzz/corpus/<target>, which is minimised afterwards so that it stays small enough to commit.
# Crashes are written to fuzz/artifacts/<target>/; each one found becomes a regression test.
#   scripts/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
need_rust
need_cargo_fuzz
seconds=${1:-600}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cd fuzz && cargo +nightly fuzz list)
cd fuzz
cargo +nightly fuzz build -O
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  echo "==> $t for ${seconds}s"
  # A crash stops that target only; its input is in artifacts/$t.
  { cargo +nightly fuzz run -O "$t" "corpus/$t" "seeds/$t" -- \
    -max_total_time="$seconds" -timeout=20 -rss_limit_mb=4096 -print_final_stats=1 2>&1 || true; } \
    | grep -E "^#[0-9]+.*DONE|stat::number_of_executed_units|stat::peak_rss|ERROR|panicked" | tail -5
  cargo +nightly fuzz cmin -O "$t" "corpus/$t" >/dev/null 2>&1
  echo "    corpus: $(ls "corpus/$t" | wc -l) inputs; crashes: $(ls "artifacts/$t" 2>/dev/null | wc -l)"
done
