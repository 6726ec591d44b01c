#!/usr/bin/env bash
# Type-checks lilypad-sdk with each of its features alone (and with none), so a
# dApp backend, a provider, a solver operator and a bridge operator can each pull
# only their part: a feature that forgets a dependency it needs fails here, not in
# a user's build. `cargo check` of the library is enough to prove that; the tests
# build the features together.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Every feature of lilypad-sdk but `fuzzing` (an internal hook of the fuzz crate,
# checked by scripts/fuzz.sh) and `tls` (compiles a C crypto library; it only adds
# rustls to reqwest, which `chain` already checks).
features=$(cargo metadata --no-deps --format-version 1 --locked |
  python3 -c 'import json,sys
m=json.load(sys.stdin)
p=next(p for p in m["packages"] if p["name"]=="lilypad-sdk")
print(" ".join(f for f in sorted(p["features"]) if f not in ("default","fuzzing","tls")))')

# A feature set that leaves code unused is a warning here and an error for a user
# who builds with -D warnings: deny them (dependencies' lints stay capped).
export RUSTFLAGS="${RUSTFLAGS:-} -D warnings"

failed=()
check() {
  local label=$1; shift
  local start=$SECONDS
  # Libraries by default; a caller checking binaries passes --bins.
  local target=(--lib)
  [[ " $* " == *" --bins "* ]] && target=()
  if cargo check --quiet --locked "${target[@]}" "$@"; then
    printf '  ok   %-16s %3ds\n' "$label" $((SECONDS - start))
  else
    printf '  FAIL %-16s\n' "$label"
    failed+=("$label")
  fi
}

echo "the crates below lilypad-sdk, alone:"
check "lilypad-gotmpl" -p lilypad-gotmpl
check "lilypad-core" -p lilypad-core
echo "lilypad-sdk, each feature alone:"
sdk=(-p lilypad-sdk --no-default-features)
check "(none)" "${sdk[@]}"
for f in $features; do
  check "$f" "${sdk[@]}" --features "$f"
done
check "default" -p lilypad-sdk

# Production binaries link no devnet code (anvil process management, the
# throwaway network): lilypad-rp never, lilypad-cli when built without its
# default `devnet` feature.
echo "production binaries, without devnet:"
no_devnet() {
  local label=$1; shift
  local found
  found=$(cargo tree --locked -e normal,features -i lilypad-sdk "$@" |
    grep -oE 'lilypad-sdk feature "(devnet|localnet)"' | sort -u | tr '\n' ' ' || true)
  if [[ -n $found ]]; then
    printf '  FAIL %-16s links %s\n' "$label" "$found"
    failed+=("$label (devnet linked)")
  else
    check "$label" "$@" --bins
  fi
}
no_devnet "lilypad-rp" -p lilypad-rp
no_devnet "lilypad-cli -devnet" -p lilypad-cli --no-default-features

if ((${#failed[@]})); then
  echo "these do not build alone: ${failed[*]}" >&2
  exit 1
fi
