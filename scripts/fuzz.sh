#!/usr/bin/env bash
# Every fuzz target for a fixed number of runs (FUZZ_RUNS, default 20000) from the corpus
# kept in fuzz/corpus/<target>, on stable Rust: libFuzzer (built by libfuzzer-sys) with
# rustc's stable sanitizer-coverage passes instead of `cargo +nightly fuzz`. New inputs go
# to a scratch copy, so the repo's corpus only changes when someone adds to it; a crash,
# a leak or an input slower than 10 s fails the run and is kept in fuzz/artifacts/<target>.
#
#   scripts/fuzz.sh              build the targets, then run each
#   scripts/fuzz.sh --build-only build them (test.sh does this in the background)
set -euo pipefail
case "${1:-}" in
  "") build_only= ;;
  --build-only) build_only=1 ;;
  *) echo "usage: scripts/fuzz.sh [--build-only]" >&2; exit 2 ;;
esac
cd "$(dirname "$0")/../fuzz"
runs="${FUZZ_RUNS:-20000}"
export CARGO_TARGET_DIR="$PWD/target"
export RUSTFLAGS="--cfg fuzzing -Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares -Cdebug-assertions -Coverflow-checks"
# An explicit --target keeps RUSTFLAGS (the coverage passes) off build scripts.
triple="$(rustc -vV | sed -n 's/^host: //p')"
cargo build --release --quiet --bins --target "$triple"
[ -z "$build_only" ] || exit 0
bin="target/$triple/release"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
for target in $(ls fuzz_targets | sed 's/\.rs$//'); do
  mkdir -p "corpus/$target" "artifacts/$target" "$scratch/$target"
  echo "==> fuzz $target: $runs runs from $(ls "corpus/$target" | wc -l) corpus inputs"
  log="$scratch/$target.log"
  if ! "$bin/$target" -runs="$runs" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
      -print_final_stats=1 -artifact_prefix="artifacts/$target/" \
      "$scratch/$target" "corpus/$target" >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    echo "fuzz target $target failed; the input is in fuzz/artifacts/$target/" >&2
    exit 1
  fi
  grep -E "^stat::(number_of_executed_units|peak_rss_mb|slowest_unit_time_sec)" "$log" || true
done
