#!/usr/bin/env bash
# The Debian package, end to end (ctest: package_deb; RESOURCE_LOCK dpkg).
#
#   deb_install.sh BUILD_DIR VERSION SOURCE_DIR
#
# Builds the .deb from BUILD_DIR (cpack --config BUILD_DIR/CPackConfig.cmake),
# installs it with `apt-get install ./idsync_*.deb`, and checks what an
# administrator relies on: the binaries on PATH and their version, the units
# (which pass systemd-analyze verify on the real root), the idsync user and
# /var/lib/idsync owned by it, the conffile, `idsyncd --check-config` on the
# installed example configuration, the man pages. There is no systemd as PID 1
# here, so idsyncd is started by hand as the idsync user (setpriv) against a
# temporary configuration, /healthz and /readyz are checked, and SIGTERM must
# stop it with status 0. Finally the package is purged and whatever the test
# created (the idsync user, /var/lib/idsync) is removed.
#
# Needs root (exit 77, which ctest reports as skipped, otherwise) and refuses
# to touch a machine where idsync is already installed (also 77).
set -euo pipefail

build=$(cd "${1:?usage: deb_install.sh BUILD_DIR VERSION SOURCE_DIR}" && pwd)
version=${2:?version}
src=$(cd "${3:?source dir}" && pwd)

if [ "$(id -u)" != 0 ]; then
  echo "SKIP: installing a .deb needs root (the CI runs tests as root)"
  exit 77
fi
if dpkg-query -W -f '${Status}' idsync 2>/dev/null | grep -q 'install ok'; then
  echo "SKIP: the idsync package is already installed on this machine; not touching it"
  exit 77
fi

work=$(mktemp -d /tmp/idsync-deb.XXXXXX)
chmod 755 "$work"
had_user=0; getent passwd idsync >/dev/null && had_user=1
had_state=0; [ -e /var/lib/idsync ] && had_state=1
daemon_pid=""
installed=0
fail=0
bad() { echo "FAIL: $*"; fail=1; }

cleanup() {
  if [ -n "$daemon_pid" ]; then kill -KILL "$daemon_pid" 2>/dev/null || true; wait "$daemon_pid" 2>/dev/null || true; fi
  if [ "$installed" = 1 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get purge -y idsync >/dev/null 2>&1 || dpkg --purge idsync >/dev/null 2>&1 || true
  fi
  if [ "$had_user" = 0 ] && getent passwd idsync >/dev/null; then userdel idsync 2>/dev/null || true; fi
  if [ "$had_user" = 0 ] && getent group idsync >/dev/null; then groupdel idsync 2>/dev/null || true; fi
  if [ "$had_state" = 0 ]; then rm -rf /var/lib/idsync; fi
  rm -rf "$work"
}
trap cleanup EXIT

echo "== cpack -G DEB from $build"
(cd "$work" && cpack -G DEB --config "$build/CPackConfig.cmake" -B "$work/pkg") >"$work/cpack.log" 2>&1 ||
  { cat "$work/cpack.log"; echo "FAIL: cpack"; exit 1; }
deb=$(ls "$work"/pkg/idsync_*.deb)
echo "built $(basename "$deb")"
dpkg-deb -f "$deb" Package Version Depends
dpkg-deb -f "$deb" Version | grep -qx "$version-1" || bad "package version is not $version-1"
dpkg-deb -f "$deb" Depends | grep -q 'libc6' || bad "Depends were not computed (no libc6)"
# The PostgreSQL store's client library comes with the package's dependencies.
dpkg-deb -f "$deb" Depends | grep -q 'libpq5' || bad "Depends lacks libpq5 (the PostgreSQL store)"

echo "== apt-get install ./$(basename "$deb")"
cp "$deb" "$work/"
installed=1
(cd "$work" && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "./$(basename "$deb")") \
  >"$work/apt.log" 2>&1 || { cat "$work/apt.log"; echo "FAIL: apt-get install"; exit 1; }
dpkg-query -W -f '${Status}\n' idsync | grep -q 'install ok installed' || bad "dpkg does not list idsync as installed"

echo "== binaries"
[ "$(command -v idsync)" = /usr/bin/idsync ] || bad "idsync is not /usr/bin/idsync on PATH"
[ "$(command -v idsyncd)" = /usr/bin/idsyncd ] || bad "idsyncd is not /usr/bin/idsyncd on PATH"
out=$(idsync --version 2>&1) || bad "idsync --version failed"
[ "$out" = "idsync $version" ] || bad "idsync --version printed '$out', want 'idsync $version'"
out=$(idsyncd --version 2>&1) || bad "idsyncd --version failed"
case "$out" in *"$version"*) ;; *) bad "idsyncd --version printed '$out'" ;; esac

echo "== units"
for u in idsyncd.service idsyncd@.service idsync-sync.service idsync-sync.timer; do
  [ -f "/lib/systemd/system/$u" ] || bad "/lib/systemd/system/$u missing"
done
for u in idsyncd.service idsyncd@demo.service idsync-sync.service idsync-sync.timer; do
  out=$(systemd-analyze verify "$u" 2>&1) || true
  [ -z "$out" ] || { printf '%s\n' "$out"; bad "systemd-analyze verify $u (installed)"; }
done

echo "== user, directories, conffile"
getent passwd idsync | grep -q ':/var/lib/idsync:/usr/sbin/nologin$' || bad "no idsync system user"
[ "$(stat -c '%U:%G %a' /var/lib/idsync 2>/dev/null)" = "idsync:idsync 750" ] ||
  bad "/var/lib/idsync is '$(stat -c '%U:%G %a' /var/lib/idsync 2>&1)'"
[ "$(stat -c '%U:%G %a' /etc/idsync 2>/dev/null)" = "root:idsync 750" ] ||
  bad "/etc/idsync is '$(stat -c '%U:%G %a' /etc/idsync 2>&1)'"
[ "$(stat -c '%U:%G %a' /etc/idsync/idsync.yaml 2>/dev/null)" = "root:idsync 640" ] ||
  bad "/etc/idsync/idsync.yaml is '$(stat -c '%U:%G %a' /etc/idsync/idsync.yaml 2>&1)'"
dpkg-query -W -f '${Conffiles}\n' idsync | grep -q '/etc/idsync/idsync.yaml' ||
  bad "/etc/idsync/idsync.yaml is not a conffile"

echo "== idsyncd --check-config on the installed example (as the idsync user, with credentials)"
creds=$work/credentials
mkdir -p "$creds"
printf 'example-account-token\n' >"$creds/account-token"
printf 'example-ldap-password\n' >"$creds/ldap-password"
chown -R idsync:idsync "$creds"
chmod 700 "$creds"
if ! out=$(setpriv --reuid=idsync --regid=idsync --init-groups env CREDENTIALS_DIRECTORY="$creds" \
    /usr/bin/idsyncd --check-config --config /etc/idsync/idsync.yaml 2>&1); then
  printf '%s\n' "$out"
  bad "idsyncd --check-config on /etc/idsync/idsync.yaml"
fi
case "$out" in *example-account-token*|*example-ldap-password*) bad "check-config printed a secret" ;; esac
# Without the credentials (a shell, as the upgrade steps run it) the file is
# checked and its secret references checked for form, none read: exit 0.
rc=0
out=$(setpriv --reuid=idsync --regid=idsync --init-groups env -u CREDENTIALS_DIRECTORY \
  /usr/bin/idsyncd --check-config --config /etc/idsync/idsync.yaml 2>&1) || rc=$?
[ "$rc" = 0 ] || { printf '%s\n' "$out"; bad "check-config without credentials exited $rc, want 0"; }
# A malformed reference is still refused (exit 2), named.
sed 's/\${file:account-token}/${account-token}/' /etc/idsync/idsync.yaml >"$creds/malformed.yaml"
chown idsync:idsync "$creds/malformed.yaml"
rc=0
out=$(setpriv --reuid=idsync --regid=idsync --init-groups env -u CREDENTIALS_DIRECTORY \
  /usr/bin/idsyncd --check-config --config "$creds/malformed.yaml" 2>&1) || rc=$?
[ "$rc" = 2 ] || { printf '%s\n' "$out"; bad "check-config of a malformed reference exited $rc, want 2"; }
case "$out" in *"malformed secret reference"*) ;; *) printf '%s\n' "$out"; bad "check-config did not name the malformed reference" ;; esac

echo "== man pages"
for p in idsync idsyncd; do
  [ -f "/usr/share/man/man8/$p.8.gz" ] || bad "man page $p(8) missing"
  zcat "/usr/share/man/man8/$p.8.gz" | grep -q "^\.SH NAME" || bad "man page $p(8) is not a man page"
done
zcat /usr/share/man/man8/idsyncd.8.gz | grep -q "idsync $version" || bad "idsyncd(8) does not carry version $version"

echo "== idsyncd runs as the idsync user (no systemd here: started by hand)"
run=$work/run
mkdir -p "$run"
cp "$src/examples/directory.ldif" "$run/"
admin_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
# The account URL is a closed loopback port: runs fail, which must not make
# idsyncd unhealthy or unready (that is what /v1/status and the metrics show).
dead_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
cat >"$run/idsync.yaml" <<CONF
account:
  url: http://127.0.0.1:$dead_port
  token: \${env:IDSYNC_TEST_TOKEN}
  retry_for: 5s
  read_retry_for: 5s
store: sqlite://$run/state.db
sources:
  - name: hr
    type: ldif
    path: directory.ldif
    users: {base: "ou=people,dc=corp,dc=example", filter: "(objectClass=inetOrgPerson)", email: mail, name: cn}
    groups: {base: "ou=groups,dc=corp,dc=example", filter: "(objectClass=groupOfNames)", name: cn, member: member}
server:
  admin_listen: ["127.0.0.1:$admin_port"]
permissions: {catalog: builtin}
rules:
  - name: admins
    match: {group: "Studio Admins"}
    role: admin
CONF
chown -R idsync:idsync "$run"
IDSYNC_TEST_TOKEN=test-token setpriv --reuid=idsync --regid=idsync --init-groups --inh-caps=-all --no-new-privs \
  /usr/bin/idsyncd --config "$run/idsync.yaml" >"$work/idsyncd.log" 2>&1 &
daemon_pid=$!
healthy=0
for _ in $(seq 100); do
  if curl -sf "http://127.0.0.1:$admin_port/healthz" >/dev/null 2>&1; then healthy=1; break; fi
  kill -0 "$daemon_pid" 2>/dev/null || break
  sleep 0.1
done
if [ "$healthy" = 1 ]; then
  echo "ok   /healthz answered"
  curl -sf "http://127.0.0.1:$admin_port/readyz" >/dev/null || bad "/readyz is not 200"
  owner=$(stat -c %U "$run/state.db" 2>/dev/null || echo none)
  [ "$owner" = idsync ] || bad "the store is owned by '$owner', not idsync"
  user=$(ps -o user= -p "$daemon_pid" | tr -d ' ')
  [ "$user" = idsync ] || bad "idsyncd runs as '$user', not idsync"
else
  tail -20 "$work/idsyncd.log"
  bad "idsyncd did not answer /healthz"
fi
kill -TERM "$daemon_pid" 2>/dev/null || true
rc=0
for _ in $(seq 100); do kill -0 "$daemon_pid" 2>/dev/null || break; sleep 0.1; done
wait "$daemon_pid" || rc=$?
daemon_pid=""
[ "$rc" = 0 ] || { tail -20 "$work/idsyncd.log"; bad "idsyncd exited $rc after SIGTERM, want 0"; }

echo "== idsync as root shares the daemon's store (switches to the idsync user)"
if out=$(IDSYNC_TEST_TOKEN=test-token idsync --config "$run/idsync.yaml" status 2>&1); then
  printf '%s\n' "$out" | grep -q 'Runs' || { printf '%s\n' "$out"; bad "idsync status printed no runs"; }
else
  printf '%s\n' "$out"
  bad "idsync status as root on the idsync-owned store"
fi
bad_files=$(find "$run" -user root -newer "$run/idsync.yaml" 2>/dev/null)
[ -z "$bad_files" ] || bad "root-owned files left in the store directory: $bad_files"

echo "== apt-get remove, then purge"
DEBIAN_FRONTEND=noninteractive apt-get remove -y idsync >"$work/remove.log" 2>&1 ||
  { cat "$work/remove.log"; bad "apt-get remove"; }
[ ! -e /usr/bin/idsyncd ] || bad "/usr/bin/idsyncd left after remove"
[ ! -e /lib/systemd/system/idsyncd.service ] || bad "idsyncd.service left after remove"
DEBIAN_FRONTEND=noninteractive apt-get purge -y idsync >/dev/null 2>&1 || bad "apt-get purge"
[ ! -e /etc/idsync/idsync.yaml ] || bad "/etc/idsync/idsync.yaml left after purge"
installed=0

if [ "$fail" = 0 ]; then echo "PASS"; else echo "FAILED"; fi
exit "$fail"
