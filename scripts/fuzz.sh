#!/usr/bin/env bash
# Builds every cargo-fuzz target (lilypad-core/fuzz, lilypad-sdk/fuzz) and runs
# each for a fixed time; fails if any target crashes, times out or leaks past
# the memory limit. See docs/fuzzing.md.
#
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#   SECONDS_PER_TARGET  libFuzzer's -max_total_time for each target (default 20)
#   TARGET              only these targets (default: all of them)
#
# Works with the stable toolchain: no sanitizer (`-s none`: the code under test
# is safe Rust, and panics are what the targets look for), debug assertions on
# (`-a`: integer overflow panics instead of wrapping). Each target's corpus grows
# in <crate>/fuzz/corpus/<target> (kept between runs, not committed), seeded from
# <crate>/fuzz/seeds/<target> (committed); crashes land in
# <crate>/fuzz/artifacts/<target>/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

budget="${1:-20}"
shift || true
[[ "$budget" =~ ^[0-9]+$ ]] || { echo "usage: $0 [SECONDS_PER_TARGET] [TARGET...]" >&2; exit 2; }
only=("$@")

CARGO_FUZZ_VERSION=0.13.2
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz $CARGO_FUZZ_VERSION (cargo install --locked)"
  cargo install --locked cargo-fuzz --version "$CARGO_FUZZ_VERSION"
fi

FLAGS=(-s none -a)
# FUZZ_PROFILE=dev builds the targets unoptimized: half the build time of the
# default release build for about a tenth of the executions per second. CI
# (.ci/run) uses it for its short smoke runs; long runs should not.
if [[ "${FUZZ_PROFILE:-release}" == dev ]]; then
  FLAGS+=(--dev)
fi
# Per-input limits: a template or an archive that takes 10 s or 2 GiB is a bug too.
LIBFUZZER=(-max_total_time="$budget" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1)

crates=(lilypad-core lilypad-sdk)
failed=()
started=$SECONDS
for crate in "${crates[@]}"; do
  dir="$crate/fuzz"
  mapfile -t targets < <(cd "$dir" && cargo fuzz list)
  wanted=()
  for t in "${targets[@]}"; do
    if [[ ${#only[@]} -eq 0 ]] || printf '%s\n' "${only[@]}" | grep -qx "$t"; then
      wanted+=("$t")
    fi
  done
  [[ ${#wanted[@]} -gt 0 ]] || continue
  # The fuzz crates are outside the workspace, so `cargo fmt --all` misses them.
  (cd "$dir" && cargo fmt --check)
  echo "==> building the fuzz targets of $crate"
  (cd "$dir" && cargo fuzz build "${FLAGS[@]}")
  for t in "${wanted[@]}"; do
    mkdir -p "$dir/corpus/$t"
    log="$dir/artifacts/$t.log"
    mkdir -p "$dir/artifacts"
    echo "==> fuzzing $crate $t for ${budget}s"
    if (cd "$dir" && cargo fuzz run "${FLAGS[@]}" "$t" "corpus/$t" "seeds/$t" -- "${LIBFUZZER[@]}") >"$log" 2>&1; then
      grep -E '^stat::number_of_executed_units|^stat::peak_rss_mb' "$log" | tr '\n' ' '
      grep -Eo 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+' "$log" | tail -1 || true
    else
      echo "!!! $crate $t failed (full output: $log):"
      # The panic (or libFuzzer's timeout / out-of-memory report) and the saved input,
      # not the input's Debug dump that cargo fuzz prints after them.
      grep -m1 -A8 -E "panicked at|ERROR: libFuzzer" "$log" || tail -n 20 "$log"
      grep -E "Test unit written to|^Failing input:" -A2 "$log" | head -n 4 || true
      failed+=("$crate/$t")
    fi
  done
done

echo "fuzzing took $((SECONDS - started))s (build included)"
if [[ ${#failed[@]} -gt 0 ]]; then
  echo "crashes in: ${failed[*]}" >&2
  echo "reproduce with: (cd <crate>/fuzz && cargo fuzz run ${FLAGS[*]} <target> artifacts/<target>/<file>)" >&2
  echo "then add the input as a regression test (docs/fuzzing.md)" >&2
  exit 1
fi
echo "no crashes"
