#!/usr/bin/env bash
# End-to-end overhead of the network: `lilypad-cli run` of the cowsay example on
# a local network that is already up (anvil, contracts, solver, content store,
# Docker provider: `lilypad-cli devnet up`) against `docker run` of the same
# image with the same sandbox flags, RUNS times each, alternating. Prints the
# medians and `e2e_overhead_ms=` (median run minus median docker run).
# Bounded: it stops by itself after 2 x RUNS jobs plus one warm-up.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

runs=${RUNS:-7}
cli=./target/release/lilypad-cli
cargo build --release --locked -p lilypad-cli -p lilypad-rp >&2

dir=$(mktemp -d)
trap '"$cli" devnet down --dir "$dir/net" >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT
"$cli" devnet up --dir "$dir/net" > "$dir/up.txt"
grep -q '^  provider pid ' "$dir/up.txt" || { cat "$dir/up.txt"; echo "no provider in the devnet" >&2; exit 1; }
net="$dir/net/network.toml"
image=lilypad-example/cowsay:0.1.0

ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
job() {
  "$cli" run ./examples/modules/cowsay -i Message=moo --network "$net" --json \
    --output-dir "$dir/results" > "$dir/last.json" 2> "$dir/last.err" \
    || { cat "$dir/last.json" "$dir/last.err" >&2; exit 1; }
}
plain() {
  docker run --rm --network none --read-only --cap-drop ALL --security-opt no-new-privileges \
    --entrypoint /bin/cowsay "$image" moo > /dev/null
}

job   # warm-up: approvals, module cache, first offer
: > "$dir/run.ms"; : > "$dir/docker.ms"
for _ in $(seq "$runs"); do
  t=$(date +%s%N); job; ms "$t" >> "$dir/run.ms"
  t=$(date +%s%N); plain; ms "$t" >> "$dir/docker.ms"
done
median() { sort -n "$1" | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : int((a[NR / 2] + a[NR / 2 + 1]) / 2) }'; }
run_ms=$(median "$dir/run.ms"); docker_ms=$(median "$dir/docker.ms")
echo "lilypad_run_ms: $(tr '\n' ' ' < "$dir/run.ms")"
echo "docker_run_ms:  $(tr '\n' ' ' < "$dir/docker.ms")"
echo "e2e_runs=$runs"
echo "lilypad_run_median_ms=$run_ms"
echo "docker_run_median_ms=$docker_ms"
echo "e2e_overhead_ms=$((run_ms - docker_ms))"
