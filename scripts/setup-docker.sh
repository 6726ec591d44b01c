#!/usr/bin/env bash
# Installs and starts the Docker engine the executor (lilypad_sdk::executor)
# and its tests use, plus what the tests and example images need:
#   docker.io        dockerd, containerd, runc and the docker CLI
#   busybox-static   the static busybox the example images are built from
#   docker-registry  a real registry (distribution) for the pull-by-digest test
#   docker-compose   `docker-compose config` checks lilypad-rp's compose file
#                    (scripts/packaging.sh) where the compose plugin is missing
#
# Idempotent: installed packages are left alone and a daemon that answers is
# not touched. As root with apt-get, missing packages are installed; otherwise
# it says exactly what to install. When /var/run/docker.sock does not answer,
# dockerd is started in the background WITHOUT a bridge network (jobs run with
# `--network none`; a docker0 bridge is never created here) and its log goes to
# $LILYPAD_DOCKERD_LOG (default /var/log/lilypad-dockerd.log).
set -euo pipefail

say() { printf '\033[1;34m[setup-docker]\033[0m %s\n' "$*"; }
die() { printf '\033[1;31m[setup-docker] error:\033[0m %s\n' "$*" >&2; exit 1; }

packages=(docker.io busybox-static docker-registry docker-compose)
socket=/var/run/docker.sock
log=${LILYPAD_DOCKERD_LOG:-/var/log/lilypad-dockerd.log}
wait_secs=${LILYPAD_DOCKERD_WAIT_SECS:-60}

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

if command -v dpkg-query >/dev/null; then
  missing=()
  for p in "${packages[@]}"; do
    installed "$p" || missing+=("$p")
  done
  if ((${#missing[@]})); then
    if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
      die "missing ${missing[*]}: install them as root with 'apt-get install -y ${missing[*]}', start dockerd ('dockerd --bridge=none --iptables=false --ip-forward=false --ip-masq=false &' or 'systemctl start docker'), then run this again"
    fi
    if ! apt-cache show "${missing[@]}" >/dev/null 2>&1; then
      say "apt-get update (the package lists lack ${missing[*]})"
      apt-get update -qq || die "apt-get update failed; fix the apt sources, then run this again"
    fi
    say "installing ${missing[*]}"
    # policy-rc.d 101 keeps the packages' init scripts from starting services
    # (a bridge-creating dockerd, a registry on port 5000) during the install.
    policy=/usr/sbin/policy-rc.d
    made_policy=0
    if [[ ! -e $policy ]]; then
      printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && made_policy=1
    fi
    rc=0
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || rc=$?
    ((made_policy)) && rm -f "$policy"
    ((rc == 0)) || die "apt-get could not install ${missing[*]}; try 'apt-get install -y ${missing[*]}' by hand"
  fi
else
  for tool in dockerd docker busybox docker-registry; do
    command -v "$tool" >/dev/null || die "not a Debian system and '$tool' is missing: install Docker Engine (dockerd and the docker CLI), a static busybox and the distribution registry (docker-registry), then run this again"
  done
fi

command -v docker >/dev/null || die "the docker CLI is missing after the install: apt-get install -y docker.io"
[[ -x /bin/busybox ]] || die "/bin/busybox is missing: apt-get install -y busybox-static"

answers() { timeout 10 docker -H "unix://$socket" version --format '{{.Server.Version}}' >/dev/null 2>&1; }

if answers; then
  say "dockerd answers on $socket ($(docker -H "unix://$socket" version --format 'server {{.Server.Version}}, API {{.Server.APIVersion}}'))"
  exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
  if [[ -S $socket ]]; then
    die "dockerd does not answer on $socket for user $(id -un): if it runs, add yourself to the 'docker' group ('sudo usermod -aG docker $(id -un)', then log in again); otherwise start it as root: 'sudo dockerd --bridge=none --iptables=false --ip-forward=false --ip-masq=false &'"
  fi
  die "dockerd is not running: start it as root with 'sudo dockerd --bridge=none --iptables=false --ip-forward=false --ip-masq=false &' (or 'sudo systemctl start docker'), then run this again"
fi

command -v dockerd >/dev/null || die "dockerd is missing: apt-get install -y docker.io"

# A dockerd that is running but not answering yet (still starting) is waited
# for below; a stale pid file or socket from a dead one is removed first.
pidfile=/var/run/docker.pid
if [[ -f $pidfile ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
  say "dockerd (pid $(cat "$pidfile")) is running but not answering yet; waiting"
else
  rm -f "$pidfile" "$socket"
  mkdir -p "$(dirname "$log")"
  say "starting dockerd (no bridge, no iptables); log: $log"
  # setsid + nohup: the daemon outlives this script and its terminal.
  setsid nohup dockerd --bridge=none --iptables=false --ip-forward=false --ip-masq=false \
    --host="unix://$socket" >>"$log" 2>&1 </dev/null &
fi

for ((i = 0; i < wait_secs * 2; i++)); do
  if answers; then
    say "dockerd answers on $socket ($(docker -H "unix://$socket" version --format 'server {{.Server.Version}}, API {{.Server.APIVersion}}'))"
    exit 0
  fi
  sleep 0.5
done
die "dockerd did not answer on $socket within ${wait_secs}s; last lines of $log:
$(tail -n 20 "$log" 2>/dev/null)"
