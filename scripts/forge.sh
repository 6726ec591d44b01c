#!/usr/bin/env bash
# Runs the pinned npm forge inside contracts/, offline, with solcjs behind
# contracts/solc-wrapper.sh (set in contracts/foundry.toml as `solc` and
# `offline`; passed again here so the flags hold whatever the config says).
#
#   scripts/forge.sh build | test | snapshot --check | fmt --check ...
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
forge="$root/node_modules/@foundry-rs/forge-linux-amd64/bin/forge"
[[ -x "$forge" ]] || bash "$root/scripts/setup-contracts.sh" >/dev/null
cd "$root/contracts"

case "${1:-}" in
  # Subcommands that compile accept --use and --offline.
  build | test | snapshot | coverage | create | inspect | script | verify-bytecode | bind)
    cmd="$1"; shift
    exec "$forge" "$cmd" --use "$root/contracts/solc-wrapper.sh" --offline "$@" ;;
  *)
    exec "$forge" "$@" ;;
esac
