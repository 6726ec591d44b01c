#!/usr/bin/env bash
# Installs the offline Solidity toolchain of contracts/: Foundry 1.7.1 (anvil,
# forge, cast) and solcjs 0.8.37 from npm, plus OpenZeppelin 5, all pinned by
# package-lock.json. foundryup and forge's own solc download need the internet
# and are never used (see docs/contracts.md).
#
# Idempotent: a second run with everything present changes nothing.
# Prints the paths of anvil, forge and cast (also as `KEY=path` lines with
# --print-env, for `eval "$(scripts/setup-contracts.sh --print-env)"`).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root="$(pwd)"

say() { printf '\033[1;34m[setup-contracts]\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31m[setup-contracts] error:\033[0m %s\n' "$*" >&2; exit 1; }

print_env=0
[[ "${1:-}" == "--print-env" ]] && print_env=1

command -v node >/dev/null || die "node not found: install Node.js 18 or newer (Debian: apt-get install -y nodejs npm), then run this again"
command -v npm >/dev/null || die "npm not found: install npm (Debian: apt-get install -y npm), then run this again"
node_major="$(node -p 'process.versions.node.split(".")[0]')"
((node_major >= 18)) || die "node $(node --version) is too old: install Node.js 18 or newer"

bins=(
  "node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil"
  "node_modules/@foundry-rs/forge-linux-amd64/bin/forge"
  "node_modules/@foundry-rs/cast-linux-amd64/bin/cast"
)
need_install=0
for b in "${bins[@]}" node_modules/solc/soljson.js node_modules/@openzeppelin/contracts/package.json; do
  [[ -e "$b" ]] || need_install=1
done
# A lockfile newer than the install means the pins changed.
if ((!need_install)) && [[ package-lock.json -nt node_modules/.package-lock.json ]]; then
  need_install=1
fi

if ((need_install)); then
  [[ "$(uname -s)-$(uname -m)" == "Linux-x86_64" ]] \
    || die "the pinned Foundry packages are for linux x86_64 only (this is $(uname -s)-$(uname -m)); install Foundry 1.7.1 by hand and put anvil, forge and cast on PATH"
  say "installing the pinned toolchain with npm ci (Foundry 1.7.1, solc 0.8.37, OpenZeppelin 5)"
  npm ci --no-audit --no-fund --loglevel=error >&2 \
    || die "npm ci failed: check that the npm registry is reachable (npm ping), then run this again"
fi

for b in "${bins[@]}"; do
  [[ -x "$b" ]] || die "$b is missing after npm ci: remove node_modules and run this again"
done

# A quick self-check: the wrapper must report a version forge understands.
ver="$(contracts/solc-wrapper.sh --version | sed -n 's/^Version: //p')"
[[ -n "$ver" ]] || die "contracts/solc-wrapper.sh --version printed no 'Version:' line"

if ((print_env)); then
  printf 'ANVIL=%s\nFORGE=%s\nCAST=%s\nSOLC=%s\n' "$root/${bins[0]}" "$root/${bins[1]}" "$root/${bins[2]}" "$root/contracts/solc-wrapper.sh"
else
  say "solc (solcjs)  $ver via $root/contracts/solc-wrapper.sh"
  say "anvil          $root/${bins[0]}"
  say "forge          $root/${bins[1]}"
  say "cast           $root/${bins[2]}"
  say "ready: run forge through scripts/forge.sh (e.g. scripts/forge.sh test)"
fi
