#!/usr/bin/env bash
# A Python virtual environment with the official `openai` client from PyPI, for the
# gateway's end-to-end test (lilypad-cli/tests/gateway_openai.rs): target/python-venv.
# Idempotent: a venv whose openai imports is kept as it is. Prints the python path.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

venv=${LILYPAD_PYTHON_VENV:-target/python-venv}
# openai 1.x: the client the gateway is tested against.
spec=${LILYPAD_OPENAI_SPEC:-openai>=1.40,<2}

say() { printf '\033[1;34m[setup-python]\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31m[setup-python] error:\033[0m %s\n' "$*" >&2; exit 1; }

if [[ -x $venv/bin/python ]] && "$venv/bin/python" -c 'import openai' 2>/dev/null; then
  echo "$PWD/$venv/bin/python"
  exit 0
fi
command -v python3 >/dev/null || die "python3 is missing: apt-get install -y python3 python3-venv"
if [[ ! -x $venv/bin/python ]]; then
  say "creating $venv"
  python3 -m venv "$venv" 2>/dev/null || {
    rm -rf "$venv"
    die "python3 -m venv failed: apt-get install -y python3-venv"
  }
fi
say "installing $spec from PyPI"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$spec" >&2 \
  || die "pip install $spec failed (is PyPI reachable?)"
"$venv/bin/python" -c 'import openai' || die "openai does not import after installing it"
echo "$PWD/$venv/bin/python"
