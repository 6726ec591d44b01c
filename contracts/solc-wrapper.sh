#!/usr/bin/env bash
# Makes solcjs (npm `solc`, WebAssembly) look like a native solc to forge:
#   forge build --use contracts/solc-wrapper.sh --offline
#
# Pitfalls handled (see shared ENVIRONMENT.md and docs/contracts.md):
# - forge runs `<solc> --version` and parses a line `Version: X.Y.Z+commit.H...`.
# - forge passes `--allow-paths <dir>` (and possibly --base-path/--include-path):
#   solcjs knows no --allow-paths, so the flag and its value are dropped.
# - stdin from forge is a non-blocking pipe that node reads with EAGAIN: it is
#   copied into a file first and node reads the file.
# - solcjs exits before a piped stdout is flushed (output cut at 64 KiB): the
#   JSON goes to a temporary FILE which is then printed with cat.
# - solcjs may print `>>> Cannot retry compilation with SMT ...` on stdout: lines
#   starting with `>>>` are dropped.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
js="$here/solc-wrapper.js"
command -v node >/dev/null || { echo "solc-wrapper: node not found (install Node.js 18+, e.g. apt-get install nodejs npm)" >&2; exit 127; }

args=()
want_version=0
want_json=0
while (($#)); do
  case "$1" in
    --allow-paths) shift; (($#)) && shift ;;
    --allow-paths=*) shift ;;
    --version) want_version=1; shift ;;
    --standard-json) want_json=1; shift ;;
    *) args+=("$1"); shift ;;
  esac
done

if ((want_version)); then
  v="$(node "$js" --version)"
  printf 'solc, the solidity compiler commandline interface\nVersion: %s\n' "$v"
  exit 0
fi

if ((!want_json)); then
  echo "solc-wrapper: only --version and --standard-json are supported (got: ${args[*]:-nothing})" >&2
  exit 2
fi

tmp="$(mktemp -d "${TMPDIR:-/tmp}/solc-wrapper.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
cat >"$tmp/input.json"
node "$js" --standard-json --input "$tmp/input.json" --output "$tmp/output.json" ${args[@]+"${args[@]}"}
grep -v '^>>>' "$tmp/output.json" || true
