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

cat <<'NOTE'

The module above is what a provider would run. Running it end to end on a
throwaway local network (anvil + contracts + solver + Docker provider) comes
with the local network: `lilypad-cli run` is not available yet.
NOTE
