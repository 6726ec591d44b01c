#!/usr/bin/env bash
# One command from a fresh clone: install what is missing, build, and show a
# module rendered exactly as a provider would receive it.
#
# Running the job end to end (anvil, contracts, solver, Docker provider) comes
# with the local network; until then this stops after rendering.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/setup.sh
printf '\n\033[1;34m==> building lilypad-cli\033[0m\n'
cargo build --release --locked -p lilypad-cli

message=${1:-moo}
printf '\n\033[1;34m==> lilypad-cli module render examples/modules/cowsay -i Message=%s\033[0m\n' "$message"
./target/release/lilypad-cli module render examples/modules/cowsay -i "Message=$message"

net_dir=$(mktemp -d)
trap './target/release/lilypad-cli devnet down --dir "$net_dir" >/dev/null 2>&1 || true; rm -rf "$net_dir"' EXIT
printf '\n\033[1;34m==> lilypad-cli devnet up (a throwaway chain with every contract deployed)\033[0m\n'
./target/release/lilypad-cli devnet up --dir "$net_dir" | sed -n '1,12p'
printf '\n\033[1;34m==> lilypad-cli devnet status\033[0m\n'
./target/release/lilypad-cli devnet status --dir "$net_dir"
printf '\n\033[1;34m==> lilypad-cli devnet down\033[0m\n'
./target/release/lilypad-cli devnet down --dir "$net_dir"

cat <<'NOTE'

The module above is what a provider would run, and the chain above is where
its deal would settle. Running the job end to end (solver, results storage,
Docker provider: `lilypad-cli run`) is not available yet.
NOTE
