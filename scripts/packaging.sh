#!/usr/bin/env bash
# Checks the packaging of lilypad-rp: `systemd-analyze verify` must accept the unit
# with nothing to say (a warning, such as an unknown key, fails too; the unit names
# /usr/local/bin/lilypad-rp, the check points it at the binary just built); docker
# compose must accept the compose file alone and with its NVIDIA override (`docker
# compose config`; Debian's docker-compose 1.29 where the v2 plugin is missing);
# and scripts/build-rp-image.sh must build an image that runs.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

command -v systemd-analyze >/dev/null ||
  { echo "systemd-analyze not found: install systemd (apt-get install systemd)" >&2; exit 1; }
# scripts/test.sh passes the binaries its test build made (LILYPAD_TEST_BIN_DIR);
# alone, this builds lilypad-rp.
if [[ -n ${LILYPAD_TEST_BIN_DIR:-} ]]; then
  bin="$LILYPAD_TEST_BIN_DIR/lilypad-rp"
  [[ -x $bin ]] || { echo "$bin is missing (LILYPAD_TEST_BIN_DIR)" >&2; exit 1; }
else
  cargo build --quiet --locked -p lilypad-rp
  bin="${CARGO_TARGET_DIR:-$(pwd)/target}/debug/lilypad-rp"
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sed "s|/usr/local/bin/lilypad-rp|$bin|g" lilypad-rp/packaging/lilypad-rp.service > "$tmp/lilypad-rp.service"
out=$(systemd-analyze verify "$tmp/lilypad-rp.service" 2>&1) || { echo "$out" >&2; exit 1; }
if [[ -n $out ]]; then
  echo "systemd-analyze verify has something to say about lilypad-rp.service:" >&2
  echo "$out" >&2
  exit 1
fi
echo "lilypad-rp.service: systemd-analyze verify accepts it"

compose=()
if docker compose version >/dev/null 2>&1; then
  compose=(docker compose)
elif command -v docker-compose >/dev/null; then
  compose=(docker-compose)
else
  echo "neither 'docker compose' nor docker-compose: apt-get install docker-compose" >&2
  exit 1
fi
# The files it mounts must exist for `config` to resolve them.
touch "$tmp/network.toml" "$tmp/password"
dir=lilypad-rp/packaging
for files in "-f $dir/docker-compose.yml" "-f $dir/docker-compose.yml -f $dir/docker-compose.nvidia.yml"; do
  # shellcheck disable=SC2086 # two words per file
  LILYPAD_CONFIG_DIR=$tmp "${compose[@]}" $files config -q ||
    { echo "${compose[*]} config refuses $files" >&2; exit 1; }
done
version=$("$bin" --version | cut -d' ' -f2)
grep -q "image: lilypad-rp:$version\$" "$dir/docker-compose.yml" ||
  { echo "$dir/docker-compose.yml does not name lilypad-rp:$version" >&2; exit 1; }
echo "docker-compose.yml (+ docker-compose.nvidia.yml): ${compose[*]} config accepts them"

bash scripts/build-rp-image.sh --bin "$bin" --tag lilypad-rp:ci
docker image rm lilypad-rp:ci >/dev/null
