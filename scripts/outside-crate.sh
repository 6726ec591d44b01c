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

# The packaged SDK must not reach into the repository: every file it includes resolves
# inside the unpacked crate.
python3 - "$out/crates/lilypad-sdk-$version" <<'PY'
import os, re, sys
root = os.path.realpath(sys.argv[1])
bad = []
for d, _, files in os.walk(os.path.join(root, "src")):
    for f in files:
        if not f.endswith(".rs"):
            continue
        path = os.path.join(d, f)
        text = open(path, encoding="utf-8").read()
        for m in re.finditer(r'include_(?:str|bytes)!\(\s*"([^"]+)"', text):
            target = os.path.realpath(os.path.join(d, m.group(1)))
            if not target.startswith(root + os.sep) or not os.path.exists(target):
                bad.append(f"{path}: {m.group(1)} -> {target}")
if bad:
    sys.exit("the packaged lilypad-sdk reads files outside itself or missing:\n" + "\n".join(bad))
PY

# The workspace's target directory: dependencies built with the same features are reused.
(cd "$out/app" && CARGO_TARGET_DIR=$target cargo build --quiet --bin outside-app)
output=$("$target/debug/outside-app" "$root/examples/modules/cowsay" "$out/state")
echo "$output"
grep -q "hello from outside the workspace" <<<"$output" \
  || { echo "the job's output lacks the message" >&2; exit 1; }
echo "outside-crate: a crate built against the packaged lilypad-sdk ran a job"
