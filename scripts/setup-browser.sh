#!/usr/bin/env bash
# Installs what the dashboard's browser test (lilypad-cli/tests/dashboard.rs, which
# runs tests/dashboard/browser.mjs) needs: Debian's chromium at /usr/bin/chromium and
# npm's playwright-core, pinned in package.json / package-lock.json. Playwright's own
# browser downloads are never used (PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD; playwright-core
# has none anyway): the test launches /usr/bin/chromium.
#
# Idempotent: what is present is left alone. chromium is installed with apt-get as
# root only when missing; otherwise this says exactly what to install.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { printf '\033[1;34m[setup-browser]\033[0m %s\n' "$*"; }
die() { printf '\033[1;31m[setup-browser] error:\033[0m %s\n' "$*" >&2; exit 1; }

if [[ ! -x /usr/bin/chromium ]]; then
  if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
    die "/usr/bin/chromium is missing: install Debian's chromium as root with 'apt-get install -y chromium', then run this again"
  fi
  if ! apt-cache show chromium >/dev/null 2>&1; then
    say "apt-get update (the package lists lack chromium)"
    apt-get update -qq || die "apt-get update failed; fix the apt sources, then run this again"
  fi
  say "installing chromium (Debian's package)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null \
    || die "apt-get could not install chromium; try 'apt-get install -y chromium' by hand"
fi
[[ -x /usr/bin/chromium ]] || die "/usr/bin/chromium is still missing after apt-get install chromium"

command -v node >/dev/null || die "node not found: install Node.js 18 or newer (Debian: apt-get install -y nodejs npm), then run this again"
command -v npm >/dev/null || die "npm not found: install npm (Debian: apt-get install -y npm), then run this again"

want="$(node -p 'require("./package.json").dependencies["playwright-core"]')"
have="$(node -p 'try { require("./node_modules/playwright-core/package.json").version } catch (_) { "" }')"
if [[ "$have" != "$want" ]]; then
  say "installing playwright-core $want with npm ci (the pinned lockfile)"
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error >&2 \
    || die "npm ci failed: check that the npm registry is reachable (npm ping), then run this again"
fi
[[ -f node_modules/playwright-core/package.json ]] || die "node_modules/playwright-core is missing after npm ci"

say "chromium $(/usr/bin/chromium --version 2>/dev/null | awk '{print $2}'), playwright-core $want"
