#!/usr/bin/env bash
# Packages the crates a dApp backend takes from a registry (`cargo add lilypad-sdk`)
# and verifies them the way crates.io would: each .crate is unpacked and built on
# its own, so a file read from outside the crate (say ../contracts) fails here.
# lilypad-sdk's dependencies on the unpublished lilypad-core and lilypad-gotmpl are
# served from the .crate files made in the same run (cargo's local registry overlay).
#
# Usage: scripts/package.sh   (the .crate files land in target/package/)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

crates=(lilypad-gotmpl lilypad-core lilypad-sdk)
args=()
for c in "${crates[@]}"; do args+=(-p "$c"); done

# What travels: the contract artifacts the bindings read must be inside the crate.
listing="$(cargo package --locked --list -p lilypad-sdk)"
for name in LilypadController LilypadToken LilypadModuleRegistry LilypadUsers LilypadPow LilypadJobManager ExampleClient; do
  grep -qx "artifacts/$name.json" <<<"$listing" \
    || { echo "lilypad-sdk's package lacks artifacts/$name.json" >&2; exit 1; }
done

# cargo unpacks the overlay's .crate files under $CARGO_HOME/registry/src/<hash of
# the target dir>/ and reuses an unpacked copy it finds there, even one an older run
# at the same path left: verification would then build stale sources. None of these
# crates comes from crates.io, so every unpacked copy of them is the overlay's.
rm -rf "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/lilypad-{gotmpl,core,sdk}-[0-9]*

cargo package --locked "${args[@]}"
ls -l "${CARGO_TARGET_DIR:-target}"/package/*.crate
