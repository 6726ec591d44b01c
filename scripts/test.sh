#!/usr/bin/env bash
# Runs every test of lilypad-rs: formatting, lints, unit, property,
# integration and doc tests. Installs missing tools first (scripts/setup.sh).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() { printf '\n\033[1;34m==> %s\033[0m\n' "$*"; }

bash scripts/setup.sh

step "cargo fmt --check"
cargo fmt --all --check

step "cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
else
  cargo test --workspace --locked --no-fail-fast
fi

step "doc tests"
cargo test --workspace --locked --doc

step "all tests passed"
