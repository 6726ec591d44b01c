#!/usr/bin/env bash
# An on-chain job end to end on a local network: a contract (ExampleClient) asks for a
# cowsay run, the bridge runs it through the network (solver, provider, storage), and the
# contract receives the results CID in its lilypadFulfilled callback. Prints that CID and
# what cowsay said. See docs/tutorial-onchain-jobs.md.
#
# Usage: examples/onchain-job/run.sh ["message"]
#
# Needs a network with a solver, storage and a provider:
#   - with LILYPAD_NETWORK unset, it uses (or starts) the devnet of `lilypad-cli devnet up`,
#     whose network file must name solver_url and storage_url, with a provider running;
#   - or set LILYPAD_NETWORK to a network file of your own (solver_url, storage_url).
# Env: LILYPAD_CLI (the binary; default: built here with cargo), LILYPAD_HOME,
#      LILYPAD_MODULE_BASE (default: cowsay:v0.0.4 is this repository's
#      examples/modules/cowsay, served from a local git repository, offline),
#      MATCH_TIMEOUT (seconds a job waits for a provider, default 120),
#      WAIT (seconds to wait for the result, default 600).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
message="${1:-hello from a contract}"
export LILYPAD_HOME="${LILYPAD_HOME:-$HOME/.lilypad}"

if [[ -n "${LILYPAD_CLI:-}" ]]; then
    cli="$LILYPAD_CLI"
else
    echo "building lilypad-cli ..." >&2
    (cd "$root" && cargo build -q -p lilypad-cli -p lilypad-rp)
    cli="$root/target/debug/lilypad-cli"
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/onchain-job.XXXXXX")"
bridge_pid=""
cleanup() {
    if [[ -n "$bridge_pid" ]]; then
        kill "$bridge_pid" 2>/dev/null || true
        wait "$bridge_pid" 2>/dev/null || true
    fi
}
trap cleanup EXIT

# 1. The network.
if [[ -z "${LILYPAD_NETWORK:-}" ]]; then
    if ! "$cli" devnet status >/dev/null 2>&1; then
        "$cli" devnet up
    fi
    export LILYPAD_NETWORK="$LILYPAD_HOME/devnet/network.toml"
fi
for key in solver_url storage_url; do
    if ! grep -q "^$key *=" "$LILYPAD_NETWORK"; then
        echo "error: $LILYPAD_NETWORK has no $key: this example needs a network with a solver," >&2
        echo "storage and a provider (lilypad-cli devnet up starting them, or your own file)" >&2
        exit 1
    fi
done
storage_url="$(sed -n 's/^storage_url *= *"\(.*\)"/\1/p' "$LILYPAD_NETWORK")"
echo "network: $LILYPAD_NETWORK" >&2

# 2. The module: ExampleClient asks for cowsay:v0.0.4. Offline, that name resolves to a
#    git repository made here from examples/modules/cowsay.
if [[ -z "${LILYPAD_MODULE_BASE:-}" ]]; then
    repo="$work/modules/lilypad-module-cowsay"
    mkdir -p "$repo"
    cp "$root"/examples/modules/cowsay/* "$repo"/
    git -C "$repo" init -q
    git -C "$repo" add .
    git -C "$repo" -c user.name=example -c user.email=example@localhost commit -q -m cowsay
    git -C "$repo" tag v0.0.4
    export LILYPAD_MODULE_BASE="file://$work/modules/lilypad-module-"
fi

# 3. The bridge (on a local chain it signs as the devnet's bridge account, which holds
#    BRIDGE_ROLE; elsewhere set WEB3_PRIVATE_KEY). The example image is built here, so
#    it has no registry digest to pin it by: --allow-unpinned-image.
"$cli" bridge --db "$work/bridge.sqlite" --poll-ms 500 --allow-unpinned-image \
    --match-timeout "${MATCH_TIMEOUT:-120}" >"$work/bridge.log" 2>&1 &
bridge_pid=$!
sleep 2
if ! kill -0 "$bridge_pid" 2>/dev/null; then
    echo "error: the bridge did not start:" >&2
    cat "$work/bridge.log" >&2
    exit 1
fi
echo "bridge running (log: $work/bridge.log)" >&2

# 4. A client contract, paying 1 token per request, funded with 10.
client="$("$cli" jobs deploy-example-client --payment 1 --fund 10)"
echo "ExampleClient: $client" >&2

# 5. The request.
job="$("$cli" jobs request-cowsay --client "$client" "$message")"
echo "job $job requested; waiting for the bridge ..." >&2

# 6. The outcome, and what the contract stored.
if ! "$cli" jobs show "$job" --wait "${WAIT:-600}" --example-client "$client" >"$work/job.txt"; then
    cat "$work/job.txt" >&2
    echo "--- bridge log (tail):" >&2
    tail -n 20 "$work/bridge.log" >&2
    exit 1
fi
cat "$work/job.txt" >&2
cid="$(awk '$1 == "client_results_cid" { print $2 }' "$work/job.txt")"
if [[ -z "$cid" ]]; then
    echo "error: the job was not fulfilled: $(awk '$1 == "reason" { $1 = ""; print }' "$work/job.txt")" >&2
    exit 1
fi

# 7. The results, verified against the CID.
if "$cli" storage get "$cid" "$work/results" --url "$storage_url" >/dev/null; then
    cat "$work/results/stdout" >&2
fi
echo "result CID stored by the contract: $cid"
