#!/usr/bin/env bash
# Provider throughput: jobs per minute that one `lilypad-rp run` finishes with
# SLOTS slots against the same daemon with 1 slot, on the same machine in the
# same run. Each configuration gets a fresh local network (`lilypad-cli devnet
# up`, whose provider reads LILYPAD_SLOTS) and three job creators (devnet
# accounts with no other role, so no two share a nonce) each posting
# JOBS_PER_CREATOR jobs one after the other, all three at once. The job sleeps
# JOB_SECS in the cowsay example's busybox image, as a short inference would
# hold its slot. Prints provider_jobs_per_min_1_slot=, provider_jobs_per_min=
# (with SLOTS slots) and provider_slots_speedup= (their ratio).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

slots=${SLOTS:-3}
per_creator=${JOBS_PER_CREATOR:-2}
job_secs=${JOB_SECS:-3}
cli=./target/release/lilypad-cli
cargo build --release --locked -p lilypad-cli -p lilypad-rp >&2

dir=$(mktemp -d)
trap '"$cli" devnet down --dir "$dir/net" >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT

# The well-known anvil keys of devnet accounts 3, 8 and 9 (lilypad_sdk::devnet).
keys=(
  0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6
  0xdbda1821b80551c9d65939329250298aa3472ba22feea921c0cf5d620ea67b97
  0x2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6
)

module="$dir/sleeper"
mkdir -p "$module"
cat > "$module/lilypad_module.json.tmpl" <<EOF
{
  "machine": { "gpu": 0, "cpu": 500, "ram": 64 },
  "job": {
    "APIVersion": "V1beta1",
    "Spec": {
      "Docker": {
        "Entrypoint": ["/bin/sh", "-c", "sleep $job_secs; echo done"],
        "Image": "lilypad-example/cowsay:0.1.0",
        "WorkingDirectory": "/tmp"
      },
      "Engine": "Docker",
      "Network": { "Type": "None" },
      "Outputs": [{ "Name": "outputs", "Path": "/outputs" }],
      "Timeout": 120
    }
  }
}
EOF

job() { # job KEY LABEL
  WEB3_PRIVATE_KEY=$1 "$cli" run "$module" --network "$dir/net/network.toml" --json \
    --output-dir "$dir/results" > "$dir/$2.json" 2> "$dir/$2.err" \
    || { cat "$dir/$2.json" "$dir/$2.err" >&2; return 1; }
}

# jobs_per_min SLOTS: prints the jobs per minute of a provider with SLOTS slots.
jobs_per_min() {
  LILYPAD_SLOTS=$1 "$cli" devnet up --dir "$dir/net" > "$dir/up.txt"
  grep -q '^  provider pid ' "$dir/up.txt" || { cat "$dir/up.txt" >&2; echo "no provider" >&2; exit 1; }
  # Warm-up, one creator after the other: registration, approval, module cache.
  for i in "${!keys[@]}"; do job "${keys[$i]}" "warm-$1-$i"; done
  local start pids=()
  start=$(date +%s%N)
  for i in "${!keys[@]}"; do
    ( for n in $(seq "$per_creator"); do job "${keys[$i]}" "job-$1-$i-$n"; done ) &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p"; done
  local ms=$(( ($(date +%s%N) - start) / 1000000 ))
  local jobs=$(( ${#keys[@]} * per_creator ))
  echo "slots=$1: $jobs jobs in $ms ms" >&2
  "$cli" devnet down --dir "$dir/net" > /dev/null
  awk -v j="$jobs" -v ms="$ms" 'BEGIN { printf "%.1f\n", j * 60000 / ms }'
}

one=$(jobs_per_min 1)
many=$(jobs_per_min "$slots")
echo "provider_slots=$slots"
echo "provider_jobs_per_min_1_slot=$one"
echo "provider_jobs_per_min=$many"
awk -v a="$many" -v b="$one" 'BEGIN { printf "provider_slots_speedup=%.2f\n", a / b }'
