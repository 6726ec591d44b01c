#!/usr/bin/env bash
# Builds the container image of lilypad-rp, `lilypad-rp:<version>`, offline: the
# binary cargo builds here, the shared libraries `ldd` says it needs (libc,
# libgcc_s, the OpenCL ICD loader; GPU drivers come from the NVIDIA container
# runtime at `docker run --gpus`), CA certificates, FROM scratch with `docker
# build --network none`. Then runs `lilypad-rp --version` in it as a check.
#
# Usage: scripts/build-rp-image.sh [--debug | --bin PATH] [--tag NAME:TAG]
#   --debug     package a debug build instead of a release build
#   --bin PATH  package this lilypad-rp binary as it is, building nothing (CI:
#               the binary its tests built)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

profile=release
bin=
version=$(cargo metadata --no-deps --format-version 1 --locked |
  python3 -c 'import json,sys; print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"]=="lilypad-rp"))')
tag="lilypad-rp:$version"
while (($#)); do
  case $1 in
    --debug) profile=debug ;;
    --bin) bin=$2; shift ;;
    --tag) tag=$2; shift ;;
    *) echo "usage: $0 [--debug | --bin PATH] [--tag NAME:TAG]" >&2; exit 2 ;;
  esac
  shift
done

command -v docker >/dev/null || { echo "the docker CLI is missing: run scripts/setup-docker.sh" >&2; exit 1; }
if [[ -n $bin ]]; then
  [[ -x $bin ]] || { echo "$bin is not an executable" >&2; exit 1; }
  profile="given binary"
elif [[ $profile == release ]]; then
  cargo build --release --locked -p lilypad-rp
  bin="${CARGO_TARGET_DIR:-target}/release/lilypad-rp"
else
  cargo build --locked -p lilypad-rp
  bin="${CARGO_TARGET_DIR:-target}/debug/lilypad-rp"
fi

ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
root="$ctx/rootfs"
install -D -m 0755 "$bin" "$root/usr/local/bin/lilypad-rp"
# Every library the binary links, at the path the dynamic loader looks for it.
ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' | sort -u |
  while read -r lib; do install -D -m 0755 "$(readlink -f "$lib")" "$root$lib"; done
if [[ -f /etc/ssl/certs/ca-certificates.crt ]]; then
  install -D -m 0644 /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
fi
install -d -m 1777 "$root/tmp"
install -d -m 0700 "$root/var/lib/lilypad"
cp lilypad-rp/packaging/Dockerfile "$ctx/Dockerfile"

docker build --quiet --network none --label "org.lilypad.version=$version" -t "$tag" "$ctx" >/dev/null
got=$(docker run --rm --network none "$tag" --version)
[[ $got == "lilypad-rp $version" ]] || { echo "the image answers --version with: $got" >&2; exit 1; }
# What the daemon offers is read inside the container (sysinfo: /proc, the mounts).
docker run --rm --network none "$tag" spec --data-dir /tmp --json |
  python3 -c 'import json,sys; s=json.load(sys.stdin); assert s["cpu_millicores"] > 0 and s["ram_mib"] > 0, s' ||
  { echo "lilypad-rp spec failed in the image" >&2; exit 1; }
size=$(docker image inspect --format '{{.Size}}' "$tag")
echo "built $tag ($((size / 1024 / 1024)) MiB, $profile): $got"
