#!/usr/bin/env bash
# Installs the Debian 12 packages idsync needs to build, test and run its demo.
# Idempotent: installs only what is missing. Run as root.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git
  libldap-dev libsasl2-dev ldap-utils libpoco-dev libyaml-cpp-dev libssl-dev libsqlite3-dev
  nlohmann-json3-dev libsystemd-dev
  googletest libgtest-dev libgmock-dev libbenchmark-dev
  python3 time
  # Integration tests: a throwaway OpenLDAP server per test.
  slapd openssl
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "==> all build dependencies are installed"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "error: missing packages: ${missing[*]}; run this script as root" >&2
  exit 2
fi
echo "==> installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# The tests start their own slapd instances; the package must not configure
# (or start) a system one.
echo 'slapd slapd/no_configuration boolean true' | debconf-set-selections
apt-get -o DPkg::Lock::Timeout=600 update -qq
apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "==> dependencies installed"
