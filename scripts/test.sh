#!/usr/bin/env bash
# Runs every test of lilypad-rs: formatting, lints, unit, property,
# integration and doc tests. Installs missing tools first (scripts/setup.sh).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() { printf '\n\033[1;34m==> %s\033[0m\n' "$*"; }

bash scripts/setup.sh

# The solver store's tests run on SQLite and on PostgreSQL (lilypad-sdk's feature
# solver-postgres, which its test build enables): a throwaway cluster under
# target/postgres, unless the caller names a server.
step "PostgreSQL for the solver's Postgres tests"
if [[ -z ${LILYPAD_TEST_POSTGRES_URL:-} ]]; then
  LILYPAD_TEST_POSTGRES_URL=$(bash scripts/setup-postgres.sh)
fi
export LILYPAD_TEST_POSTGRES_URL
echo "LILYPAD_TEST_POSTGRES_URL=$LILYPAD_TEST_POSTGRES_URL"

step "cargo fmt --check"
cargo fmt --all --check

# Optional SDK features without system libraries are built, linted and tested
# too (`--all-features` would also pull TLS's C crypto build for nothing).
FEATURES=(--features lilypad-sdk/storage)

step "cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets --locked "${FEATURES[@]}" -- -D warnings

step "lilypad-sdk: each feature builds alone"
bash scripts/features.sh

step "cargo package (lilypad-core, lilypad-sdk), verified as crates.io would build them"
bash scripts/package.sh

step "a crate outside the workspace runs a job with the packaged lilypad-sdk"
bash scripts/outside-crate.sh

step "tests"
# The test build puts every workspace binary in target/debug; the tests that run
# another crate's binary take it there instead of building it again with that
# crate's features alone (a second copy of the dependency tree, built while the
# tests run).
export LILYPAD_TEST_BIN_DIR="${CARGO_TARGET_DIR:-$PWD/target}/debug"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast "${FEATURES[@]}"
else
  cargo test --workspace --locked --no-fail-fast "${FEATURES[@]}"
fi

step "packaging: the systemd unit, the compose files and the container image of lilypad-rp"
bash scripts/packaging.sh

step "doc tests"
cargo test --workspace --locked --doc "${FEATURES[@]}"

step "contracts: forge fmt --check"
bash scripts/forge.sh fmt --check

step "contracts: forge tests (unit, fuzz, invariant)"
bash scripts/forge.sh test

# Fuzz and invariant gas depends on the inputs forge draws, which vary between
# runs; the snapshot pins the deterministic tests only.
step "contracts: gas snapshot of the deterministic tests (forge snapshot --check)"
bash scripts/forge.sh snapshot --check --no-match-test 'testFuzz_|invariant_'

step "contracts: committed artifacts match a fresh build"
node contracts/export-artifacts.js --check

step "all tests passed"
