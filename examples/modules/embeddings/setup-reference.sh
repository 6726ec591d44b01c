#!/usr/bin/env bash
# A Python venv under target/embeddings/venv with numpy, for reference.py (the
# independent numpy implementation the end-to-end test compares the module
# with). Idempotent; prints the venv's python.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
venv=$root/target/embeddings/venv

die() { printf '\033[1;31m[embeddings] error:\033[0m %s\n' "$*" >&2; exit 1; }

if ! "$venv/bin/python" -c 'import numpy' 2>/dev/null; then
  command -v python3 >/dev/null || die "python3 is missing: install Python 3.9 or newer (apt-get install python3 python3-venv)"
  rm -rf "$venv"
  python3 -m venv "$venv" >&2 \
    || die "python3 -m venv failed: install the venv module (apt-get install python3-venv)"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check 'numpy>=1.24,<3' >&2 \
    || die "pip could not install numpy into $venv: is PyPI reachable?"
fi
echo "$venv/bin/python"
