#!/usr/bin/env bash
# Gateway latency and throughput: CLIENTS concurrent OpenAI clients (the official
# `openai` Python package) each sending REQUESTS embeddings requests (4 texts) to
# `lilypad-cli gateway` on a fresh local network (`lilypad-cli devnet up`, whose
# provider runs LILYPAD_SLOTS slots), warm (one request first: image present,
# module cached, allowance approved); then, in the same run, the same load as
# `docker run` of the module's image straight on this machine, the floor the
# network's overhead sits on. Prints gateway_embeddings_p50_ms=,
# gateway_embeddings_rps=, docker_embeddings_p50_ms=, docker_embeddings_rps= and
# gateway_vs_docker_p50= (their ratio); then the same with one client
# (SINGLE requests one after the other, *_1_client=): the latency a deal adds to
# a container run when nothing queues.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

clients=${CLIENTS:-16}
requests=${REQUESTS:-2}
single=${SINGLE:-5}
slots=${LILYPAD_SLOTS:-2}
model=all-MiniLM-L6-v2
image=lilypad-example/embeddings:0.1.0
cli=./target/release/lilypad-cli

cargo build --release --locked -p lilypad-cli -p lilypad-rp >&2
bash scripts/build-example-images.sh >&2
python=$(bash scripts/setup-python.sh)

dir=$(mktemp -d)
gw_pid=
cleanup() {
  [[ -n $gw_pid ]] && kill "$gw_pid" 2>/dev/null || true
  "$cli" devnet down --dir "$dir/net" >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT

LILYPAD_SLOTS=$slots "$cli" devnet up --dir "$dir/net" > "$dir/up.txt"
grep -q '^  provider pid ' "$dir/up.txt" || { cat "$dir/up.txt" >&2; echo "no provider" >&2; exit 1; }
export LILYPAD_HOME=$dir/home
key=$("$cli" gateway keys create --name bench --db "$dir/keys.db" | grep -o 'lp-[0-9a-f]*' | head -n 1)
[[ -n $key ]] || { echo "no API key was printed" >&2; exit 1; }

# The devnet's job creator pays (its key is the default on the local chain).
"$cli" gateway --network "$dir/net/network.toml" --listen 127.0.0.1:0 --db "$dir/keys.db" \
  --model "$model=./examples/modules/embeddings" > "$dir/gateway.out" 2> "$dir/gateway.log" &
gw_pid=$!
url=
for _ in $(seq 100); do
  url=$(grep -o 'http://[0-9.:]*' "$dir/gateway.out" | head -n 1 || true)
  [[ -n $url ]] && break
  kill -0 "$gw_pid" 2>/dev/null || { cat "$dir/gateway.log" >&2; echo "the gateway exited" >&2; exit 1; }
  sleep 0.2
done
[[ -n $url ]] || { cat "$dir/gateway.log" >&2; echo "the gateway did not start" >&2; exit 1; }

load() { "$python" scripts/gateway_load.py "$@" || { tail -n 50 "$dir/gateway.log" >&2; exit 1; }; }
load gateway "$url/v1" "$key" "$model" 1 1 > /dev/null # warm-up
gw=$(load gateway "$url/v1" "$key" "$model" "$clients" "$requests")
echo "gateway ($clients clients x $requests requests, $slots slots): $gw" >&2
gw1=$(load gateway "$url/v1" "$key" "$model" 1 "$single")
echo "gateway (1 client x $single requests): $gw1" >&2
load docker "$image" 1 1 > /dev/null # warm-up
dk=$(load docker "$image" "$clients" "$requests")
echo "docker run ($clients clients x $requests runs): $dk" >&2
dk1=$(load docker "$image" 1 "$single")
echo "docker run (1 client x $single runs): $dk1" >&2

field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p" <<<"$2"; }
echo "gateway_clients=$clients"
echo "gateway_embeddings_p50_ms=$(field p50_ms "$gw")"
echo "gateway_embeddings_rps=$(field rps "$gw")"
echo "docker_embeddings_p50_ms=$(field p50_ms "$dk")"
echo "docker_embeddings_rps=$(field rps "$dk")"
awk -v a="$(field p50_ms "$gw")" -v b="$(field p50_ms "$dk")" 'BEGIN { printf "gateway_vs_docker_p50=%.2f\n", a / b }'
echo "gateway_embeddings_p50_ms_1_client=$(field p50_ms "$gw1")"
echo "docker_embeddings_p50_ms_1_client=$(field p50_ms "$dk1")"
awk -v a="$(field p50_ms "$gw1")" -v b="$(field p50_ms "$dk1")" 'BEGIN { printf "gateway_overhead_ms_1_client=%.0f\n", a - b }'
