#!/usr/bin/env bash
# Builds a crate outside the workspace against the packaged lilypad-sdk (the .crate
# files scripts/package.sh made: no path into the repository, no ../contracts) and
# runs a job with it on a throwaway local network (anvil, dockerd). Fails, saying
# what is missing, when the .crate files are not there.
#
# Usage: scripts/outside-crate.sh   (after scripts/package.sh)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD
target=${CARGO_TARGET_DIR:-$root/target}
out=$target/outside
version=$(cargo metadata --no-deps --format-version 1 --locked |
  python3 -c 'import json,sys; print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"]=="lilypad-sdk"))')

rm -rf "$out" && mkdir -p "$out/crates"
for c in lilypad-gotmpl lilypad-core lilypad-sdk; do
  crate=$target/package/$c-$version.crate
  [[ -f $crate ]] || { echo "missing $crate: run scripts/package.sh first" >&2; exit 1; }
  tar -xzf "$crate" -C "$out/crates"
done
cp -r lilypad-sdk/tests/outside-crate "$out/app"
sed -i "s|@SDK@|$out/crates/lilypad-sdk-$version|; s|@CORE@|$out/crates/lilypad-core-$version|; s|@GOTMPL@|$out/crates/lilypad-gotmpl-$version|" \
  "$out/app/Cargo.toml"
# The workspace's lock pins the same dependency versions (cargo drops what is unused).
cp Cargo.lock "$out/app/Cargo.lock"

# The packaged SDK must not reach into the repository.
if grep -rn '\.\./contracts\|\.\./\.\.' "$out/crates/lilypad-sdk-$version/src" >/dev/null; then
  echo "the packaged lilypad-sdk reads files outside itself:" >&2
  grep -rn '\.\./contracts\|\.\./\.\.' "$out/crates/lilypad-sdk-$version/src" >&2
  exit 1
fi

# The workspace's target directory: dependencies built with the same features are reused.
(cd "$out/app" && CARGO_TARGET_DIR=$target cargo build --quiet --bin outside-app)
output=$("$target/debug/outside-app" "$root/examples/modules/cowsay" "$out/state")
echo "$output"
grep -q "hello from outside the workspace" <<<"$output" \
  || { echo "the job's output lacks the message" >&2; exit 1; }
echo "outside-crate: a crate built against the packaged lilypad-sdk ran a job"
