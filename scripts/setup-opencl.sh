#!/usr/bin/env bash
# Installs the OpenCL runtime the proof-of-work miner builds against and its
# tests run on: pocl (a real OpenCL 3 CPU device), the ICD loader with its
# headers (libOpenCL, which lilypad-rp links), and clinfo.
#
# Idempotent: installed packages are left alone. As root with apt-get, missing
# packages are installed (after `apt-get update` when the package lists lack
# them); otherwise it says exactly what to install. Ends by checking that
# `clinfo -l` lists a device.
set -euo pipefail

say() { printf '\033[1;34m[setup-opencl]\033[0m %s\n' "$*"; }
die() { printf '\033[1;31m[setup-opencl] error:\033[0m %s\n' "$*" >&2; exit 1; }

packages=(pocl-opencl-icd ocl-icd-opencl-dev clinfo)

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

if command -v dpkg-query >/dev/null; then
  missing=()
  for p in "${packages[@]}"; do
    installed "$p" || missing+=("$p")
  done
  if ((${#missing[@]})); then
    if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
      die "missing ${missing[*]}: install them as root with 'apt-get install -y ${missing[*]}', then run this again"
    fi
    # Fresh machines and containers often have no package lists yet.
    if ! apt-cache show "${missing[@]}" >/dev/null 2>&1; then
      say "apt-get update (the package lists lack ${missing[*]})"
      apt-get update -qq || die "apt-get update failed; fix the apt sources, then run this again"
    fi
    say "installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null \
      || die "apt-get could not install ${missing[*]}; try 'apt-get install -y ${missing[*]}' by hand"
  fi
elif ! command -v clinfo >/dev/null; then
  die "not a Debian system: install an OpenCL driver (pocl, or your GPU vendor's), the OpenCL ICD loader with its development files (libOpenCL.so) and clinfo, then run this again"
fi

command -v clinfo >/dev/null || die "clinfo not found after installing it; install it with 'apt-get install -y clinfo'"
devices=$(clinfo -l 2>&1) || die "clinfo -l failed: ${devices}"
grep -q 'Device #' <<<"$devices" \
  || die "clinfo -l lists no OpenCL device (${devices:-no output}); on Debian: apt-get install -y pocl-opencl-icd. pocl also hides its device when it cannot write its kernel cache: make \$HOME/.cache writable or set POCL_CACHE_DIR"
say "OpenCL devices:"
printf '%s\n' "$devices"
