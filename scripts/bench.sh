#!/usr/bin/env bash
# Runs the criterion benchmarks; each prints its ratio against the baseline it
# measured in the same run. With --check, fails when a target of
# docs/benchmarks.md is missed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

check=0
[[ "${1:-}" == "--check" ]] && check=1

out=$(mktemp)
trap 'rm -f "$out"' EXIT

# solver: a load test of the solver (needs anvil: scripts/setup-contracts.sh), on
# SQLite and then on PostgreSQL, one replica and two (a throwaway cluster unless the
# caller names one).
if [[ -z ${LILYPAD_TEST_POSTGRES_URL:-} ]]; then
  LILYPAD_TEST_POSTGRES_URL=$(bash scripts/setup-postgres.sh)
fi
export LILYPAD_TEST_POSTGRES_URL
for bench in matcher template pow_keccak solver; do
  printf '\n\033[1;34m==> cargo bench -p lilypad-benches --bench %s\033[0m\n' "$bench"
  cargo bench -p lilypad-benches --bench "$bench" --locked 2>&1 | tee -a "$out"
done

# One release build of both binaries for everything below (the scripts build
# the same pair: a no-op then); `cargo run -p lilypad-rp` would build another
# copy of the dependency tree, with lilypad-rp's features alone.
printf '\n\033[1;34m==> cargo build --release -p lilypad-cli -p lilypad-rp\033[0m\n'
cargo build --release --locked -p lilypad-cli -p lilypad-rp

printf '\n\033[1;34m==> lilypad-rp bench --seconds 10\033[0m\n'
"${CARGO_TARGET_DIR:-target}/release/lilypad-rp" bench --seconds 10 2>&1 | tee -a "$out"

printf '\n\033[1;34m==> end-to-end overhead: lilypad-cli run vs docker run (scripts/e2e-overhead.sh)\033[0m\n'
bash scripts/e2e-overhead.sh 2>&1 | tee -a "$out"

printf '\n\033[1;34m==> provider throughput: 3 slots vs 1 (scripts/provider-throughput.sh)\033[0m\n'
bash scripts/provider-throughput.sh 2>&1 | tee -a "$out"

printf '\n\033[1;34m==> gateway: 16 OpenAI clients vs docker run of the embeddings image (scripts/gateway-bench.sh)\033[0m\n'
bash scripts/gateway-bench.sh 2>&1 | tee -a "$out"

printf '\n\033[1;34m==> figures\033[0m\n'
grep -E '^[a-z0-9_]+=[0-9.]+$' "$out" || true

((check)) || exit 0

# value NAME: the figure printed as NAME=<number>
value() { grep -E "^$1=" "$out" | tail -n 1 | cut -d= -f2; }
fail=0
need() { # need NAME OP LIMIT
  local v; v=$(value "$1")
  if [[ -z "$v" ]]; then echo "missing figure $1" >&2; fail=1; return; fi
  if ! awk -v v="$v" -v l="$3" -v op="$2" 'BEGIN { exit !((op == ">=") ? v >= l : v <= l) }'; then
    echo "target missed: $1=$v, want $2 $3" >&2; fail=1
  else
    echo "target met: $1=$v ($2 $3)"
  fi
}
# The design target is 100 (docs/benchmarks.md: 111 to 130 measured on an idle
# 2-core machine). The naive baseline's time moves with machine load by up to
# 2x, so CI gates at half the target: a regression guard that noise cannot
# trip, while the printed figure is what docs/benchmarks.md reports.
need speedup_vs_naive_10000x10000 '>=' 50
need incremental_match_100k_us '<=' 20
# pocl's CPU device beats the scalar CPU fallback by its SIMD width: 5.4 to 6.0
# measured on AVX-512 hosts (8 x 64-bit lanes, one-instruction rotates and chi),
# about 1.05 on an AVX2-only host (4 lanes, rotates in three instructions;
# docs/benchmarks.md). The 1.5 target is for AVX-512 hosts (and GPUs); on the
# others the gate only guards against the kernel falling behind the fallback.
if grep -qw avx512f /proc/cpuinfo 2>/dev/null; then
  need opencl_vs_cpu '>=' 1.5
else
  echo "note: no AVX-512 on this host: opencl_vs_cpu is gated at 0.9 (the 1.5 target is for AVX-512 hosts)"
  need opencl_vs_cpu '>=' 0.9
fi
# Signed offers stored durably per second (docs/benchmarks.md, "Solver").
need solver_offers_per_sec '>=' 2000
# Median lilypad-cli run minus median docker run of the same image (docs/benchmarks.md).
need e2e_overhead_ms '<=' 1500
# Jobs per minute of a provider with 3 slots over the same provider with 1, jobs
# that hold their slot for 3 s (docs/benchmarks.md, "Provider throughput"): about
# 3 with no overhead; gated at half of it.
need provider_slots_speedup '>=' 1.5
# One embeddings request through the gateway (a whole deal) over one docker run of
# the same image, nothing queued (docs/benchmarks.md, "Gateway"); gated as the
# end-to-end overhead is.
need gateway_overhead_ms_1_client '<=' 1500
exit $fail
