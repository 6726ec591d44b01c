#!/usr/bin/env bash
# One command from a fresh clone: install what is missing (scripts/setup.sh:
# Docker engine, anvil/forge/solc from npm, OpenCL runtime, Python tools),
# build, build the example images, and run the cowsay example job end to end
# on a throwaway local network (anvil + contracts + solver + content store +
# Docker provider, all started by `lilypad-cli run` and stopped afterwards).
#
#   scripts/quickstart.sh            # says "moo"
#   scripts/quickstart.sh "hello"    # says "hello"
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# The job needs the cowsay image only (the model modules' images take minutes to
# build) and no browser (the dashboard's test does).
LILYPAD_EXAMPLE_IMAGES=cowsay LILYPAD_SETUP_BROWSER=0 bash scripts/setup.sh
printf '\n\033[1;34m==> building lilypad-cli and lilypad-rp\033[0m\n'
cargo build --locked -p lilypad-cli -p lilypad-rp

message=${1:-moo}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
printf '\n\033[1;34m==> lilypad-cli run examples/modules/cowsay -i Message=%s\033[0m\n' "$message"
# No --network and no running devnet: `run` starts and stops a local network itself.
env -u LILYPAD_NETWORK LILYPAD_HOME="$out/home" \
  ./target/debug/lilypad-cli run ./examples/modules/cowsay -i "Message=$message" --output-dir "$out/results"
