#!/usr/bin/env bash
# Starts a throwaway PostgreSQL cluster for the solver's Postgres backend and its
# tests (docs/dev/postgres-solver.md), and prints the URL to use, e.g.
#   postgres://lilypad@127.0.0.1:55432/lilypad
# as the only line on stdout (progress goes to stderr), so that
#   export LILYPAD_TEST_POSTGRES_URL=$(bash scripts/setup-postgres.sh)
# works. `--stop` stops the cluster; `--url` prints the URL of a running one
# without starting anything (and fails when none runs).
#
# The cluster lives in target/postgres ($LILYPAD_PG_DIR to move it): data/ (the
# cluster), server.log, and the server's unix socket. It listens on 127.0.0.1
# only, on the first free port from 55432 ($LILYPAD_PG_PORT to start elsewhere),
# with `trust` authentication: it is for tests on this machine, never for a
# deployment. The superuser and the database are both named `lilypad`.
#
# PostgreSQL refuses to run as root. As root (as CI runs) the server runs as a
# dedicated system user, `lilypad-pg` ($LILYPAD_PG_USER), created when missing;
# when that user cannot reach target/ (a checkout under /root), the cluster goes
# to /var/tmp/lilypad-postgres-<hash of the checkout path> instead, said on stderr.
#
# Idempotent: a running cluster is left alone and its URL printed; a stopped one
# is started again (on another port if its own was taken meanwhile). Missing
# server binaries are installed with apt-get (Debian's `postgresql` package) when
# run as root.
set -euo pipefail

say() { printf '\033[1;34m[setup-postgres]\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31m[setup-postgres] error:\033[0m %s\n' "$*" >&2; exit 1; }

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
root=${LILYPAD_PG_DIR:-$repo/target/postgres}
first_port=${LILYPAD_PG_PORT:-55432}
pg_user=${LILYPAD_PG_USER:-lilypad-pg}
wait_secs=${LILYPAD_PG_WAIT_SECS:-30}

mode=start
case "${1:-}" in
  "") ;;
  --stop) mode=stop ;;
  --url) mode=url ;;
  -h | --help) sed -n '2,24p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 0 ;;
  *) die "unknown argument '$1' (use no argument to start, --stop or --url)" ;;
esac

# ---------------------------------------------------------------- binaries
bindir() {
  local d
  if command -v pg_config >/dev/null && d=$(pg_config --bindir 2>/dev/null) && [[ -x $d/initdb ]]; then
    echo "$d"
    return
  fi
  # Debian keeps the server outside PATH; take the newest installed version.
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  [[ -n $d && -x $d/initdb ]] && echo "$d"
}

bin=$(bindir || true)
if [[ -z $bin ]]; then
  [[ $mode == start ]] || die "no PostgreSQL server is installed (run this script without arguments to install one)"
  if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
    die "no PostgreSQL server (initdb, pg_ctl) found: install it as root with 'apt-get install -y postgresql', then run this again"
  fi
  if ! apt-cache show postgresql >/dev/null 2>&1; then
    say "apt-get update (the package lists lack postgresql)"
    apt-get update -qq || die "apt-get update failed; fix the apt sources, then run this again"
  fi
  say "installing postgresql"
  # policy-rc.d 101 keeps the package from starting its own cluster on port 5432.
  policy=/usr/sbin/policy-rc.d
  made_policy=0
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && made_policy=1
  fi
  rc=0
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null || rc=$?
  ((made_policy)) && rm -f "$policy"
  ((rc == 0)) || die "apt-get could not install postgresql; try 'apt-get install -y postgresql' by hand"
  bin=$(bindir || true)
  [[ -n $bin ]] || die "postgresql is installed but initdb is not under /usr/lib/postgresql/*/bin"
fi

# ---------------------------------------------------------------- who runs it
as_root=0
[[ $(id -u) -eq 0 ]] && as_root=1

# Runs a command as the server's user (ourselves unless root).
as_server() {
  if ((as_root)); then
    runuser -u "$pg_user" -- "$@"
  else
    "$@"
  fi
}

if ((as_root)); then
  if ! id -u "$pg_user" >/dev/null 2>&1; then
    [[ $mode == start ]] || die "user $pg_user does not exist: no cluster was ever started here"
    say "creating the system user $pg_user (PostgreSQL refuses to run as root)"
    useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$pg_user" \
      || die "useradd $pg_user failed; create an unprivileged user and pass it as LILYPAD_PG_USER"
  fi
  # The server needs to reach its data directory through every parent.
  probe=$root
  while [[ ! -e $probe ]]; do probe=$(dirname "$probe"); done
  if [[ -z ${LILYPAD_PG_DIR:-} ]] && ! runuser -u "$pg_user" -- test -x "$probe"; then
    alt=/var/tmp/lilypad-postgres-$(printf '%s' "$repo" | sha256sum | cut -c1-12)
    say "$pg_user cannot reach $probe; the cluster lives in $alt instead"
    root=$alt
  fi
fi

data=$root/data
log=$root/server.log
port_file=$root/port

running() { [[ -f $data/postmaster.pid ]] && as_server "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; }
url() { echo "postgres://lilypad@127.0.0.1:$(cat "$port_file")/lilypad"; }

port_free() {
  # A connection that succeeds means something listens there.
  ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}
free_port() {
  local p
  for ((p = first_port; p < first_port + 200; p++)); do
    if port_free "$p"; then
      echo "$p"
      return
    fi
  done
  die "no free port in $first_port..$((first_port + 199)) on 127.0.0.1 (set LILYPAD_PG_PORT)"
}

case $mode in
  stop)
    if [[ -d $data ]] && running; then
      say "stopping the cluster in $data"
      as_server "$bin/pg_ctl" -D "$data" -m fast -w stop >/dev/null
    else
      say "no cluster runs in $data"
    fi
    exit 0
    ;;
  url)
    running || die "no cluster runs in $data: start one with 'bash scripts/setup-postgres.sh'"
    url
    exit 0
    ;;
esac

if [[ -d $data ]] && running; then
  say "the cluster in $data runs already"
  url
  exit 0
fi

mkdir -p "$root"
((as_root)) && chown "$pg_user" "$root"
# The server writes its socket and log here.
chmod 700 "$root"

if [[ ! -f $data/PG_VERSION ]]; then
  rm -rf "$data"
  say "initdb in $data ($("$bin/postgres" --version))"
  as_server "$bin/initdb" -D "$data" -U lilypad --auth=trust --encoding=UTF8 --locale=C.UTF-8 \
    >"$root/initdb.log" 2>&1 || die "initdb failed; see $root/initdb.log"
  # Loopback TCP plus a socket beside the data; settings a test cluster wants.
  cat >>"$data/postgresql.conf" <<EOF

# scripts/setup-postgres.sh
listen_addresses = '127.0.0.1'
unix_socket_directories = '$root'
max_connections = 200
log_min_messages = warning
EOF
fi

port=$(cat "$port_file" 2>/dev/null || true)
if [[ -z $port ]] || ! port_free "$port"; then
  port=$(free_port)
fi
echo "$port" >"$port_file"

say "starting PostgreSQL on 127.0.0.1:$port (log: $log)"
# -p on the command line wins over postgresql.conf, so a taken port needs no edit.
as_server "$bin/pg_ctl" -D "$data" -l "$log" -o "-p $port" -w -t "$wait_secs" start >/dev/null \
  || die "PostgreSQL did not start within ${wait_secs}s; see $log"

# The database named in the URL.
if ! as_server "$bin/psql" -h 127.0.0.1 -p "$port" -U lilypad -d postgres -tAc \
  "SELECT 1 FROM pg_database WHERE datname = 'lilypad'" | grep -q 1; then
  as_server "$bin/createdb" -h 127.0.0.1 -p "$port" -U lilypad lilypad \
    || die "could not create the database lilypad; see $log"
fi
url
