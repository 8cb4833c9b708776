#!/usr/bin/env bash
# Installs the Debian 12 packages idsync needs to build, test and run its demo.
# Idempotent: installs only what is missing. Run as root.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git
  # CI also builds the tree with clang 14 (against GCC's libstdc++).
  clang-14
  libldap-dev libsasl2-dev ldap-utils libpoco-dev libyaml-cpp-dev libssl-dev libsqlite3-dev libpq-dev
  nlohmann-json3-dev libsystemd-dev
  googletest libgtest-dev libgmock-dev libbenchmark-dev
  python3 python3-yaml time
  # Integration tests: a throwaway OpenLDAP server per test, a throwaway
  # Active Directory domain controller (Samba), nginx as the HTTP baseline of
  # the SCIM benchmark, the Prometheus text parser, systemd-analyze.
  slapd openssl samba samba-ad-dc samba-ad-provision winbind
  # The PostgreSQL store's tests start their own throwaway server.
  postgresql-15 postgresql-client-15
  prometheus-cpp-dev python3-prometheus-client
  nginx-light wrk jq curl ccache systemd dpkg-dev
  # promtool evaluates the shipped alerting rules against a test daemon.
  prometheus
  # The console's browser test (tests/browser): chromium and its matching
  # driver, both from Debian.
  chromium chromium-driver
)

# npm tools, at pinned versions: newman runs the SCIM conformance collection.
npm_tools=(newman@6.2.2)
# Test directories with npm packages pinned in their package-lock.json: the
# differential SCIM suites (scim-patch, scim2-parse-filter) and the
# console's browser test (selenium-webdriver, axe-core).
npm_dirs=(tests/differential tests/browser)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

# The installed version of global npm package $1, or "".
npm_global_version() {
  npm ls -g --depth=0 --json 2>/dev/null |
    python3 -c 'import json,sys; d=json.load(sys.stdin).get("dependencies",{}); print(d.get(sys.argv[1],{}).get("version",""))' "$1" 2>/dev/null || true
}

install_npm_tools() {
  if ! command -v npm >/dev/null 2>&1; then
    echo "==> npm is missing: installing nodejs and npm from Debian"
    apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends nodejs npm >/dev/null
  fi
  local want=()
  for tool in "${npm_tools[@]}"; do
    if [ "$(npm_global_version "${tool%@*}")" != "${tool##*@}" ]; then
      want+=("$tool")
    fi
  done
  if [ ${#want[@]} -gt 0 ]; then
    echo "==> installing npm tools: ${want[*]}"
    npm install -g --no-fund --no-audit --loglevel=error "${want[@]}" >/dev/null
  fi
  # npm ci again only when the lock file changed since the last install.
  local root lock stamp dir
  root=$(cd "$(dirname "$0")/.." && pwd)
  for dir in "${npm_dirs[@]}"; do
    lock="$root/$dir/package-lock.json"
    stamp="$root/$dir/node_modules/.idsync-lock"
    if [ -f "$lock" ] && ! cmp -s "$lock" "$stamp"; then
      echo "==> installing the npm packages of $dir"
      npm ci --prefix "$root/$dir" --no-fund --no-audit --loglevel=error >/dev/null
      cp "$lock" "$stamp"
    fi
  done
}

if [ ${#missing[@]} -eq 0 ]; then
  echo "==> all build dependencies are installed"
  install_npm_tools
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "error: missing packages: ${missing[*]}; run this script as root" >&2
  exit 2
fi
echo "==> installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Packages must not start their system services (samba, nginx, slapd): the
# tests start their own instances on loopback. policy-rc.d says so for the
# duration of the install.
policy=/usr/sbin/policy-rc.d
had_policy=0
[ -e "$policy" ] && had_policy=1
if [ $had_policy -eq 0 ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod 755 "$policy"
  trap 'rm -f "$policy"' EXIT
fi
# The tests start their own slapd instances; the package must not configure
# (or start) a system one.
echo 'slapd slapd/no_configuration boolean true' | debconf-set-selections
apt-get -o DPkg::Lock::Timeout=600 update -qq
apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Samba's packages add winbind to the passwd and group lookups; idsync's
# tests do not use it, and it slows every user lookup on the machine.
sed -i -E '/^(passwd|group):/ s/ winbind//' /etc/nsswitch.conf
echo "==> dependencies installed"
install_npm_tools
