#!/usr/bin/env bash
# Checks the packaging of lilypad-rp: `systemd-analyze verify` must accept the unit
# with nothing to say (a warning, such as an unknown key, fails too). The unit names
# /usr/local/bin/lilypad-rp; the check points it at the binary just built.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

command -v systemd-analyze >/dev/null ||
  { echo "systemd-analyze not found: install systemd (apt-get install systemd)" >&2; exit 1; }
cargo build --quiet --locked -p lilypad-rp
bin="$(pwd)/target/debug/lilypad-rp"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sed "s|/usr/local/bin/lilypad-rp|$bin|g" lilypad-rp/packaging/lilypad-rp.service > "$tmp/lilypad-rp.service"
out=$(systemd-analyze verify "$tmp/lilypad-rp.service" 2>&1) || { echo "$out" >&2; exit 1; }
if [[ -n $out ]]; then
  echo "systemd-analyze verify has something to say about lilypad-rp.service:" >&2
  echo "$out" >&2
  exit 1
fi
echo "lilypad-rp.service: systemd-analyze verify accepts it"
