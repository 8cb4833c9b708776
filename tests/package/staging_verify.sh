#!/usr/bin/env bash
# Staging install + systemd checks (ctest: package_staging_verify).
#
#   staging_verify.sh BUILD_DIR
#
# 1. `cmake --install BUILD_DIR --prefix /usr` into a staging root (DESTDIR).
# 2. `systemd-analyze verify --root=ROOT` on every unit. verify resolves
#    ExecStart= binaries, the units they pull in and man: links inside the
#    root, so the root also gets the host's own units (sysinit.target, ...),
#    /bin/kill and the usr-merge links, and MANPATH points at the staged pages.
#    verify exits 0 on unknown keys and bad values (it only warns), so any line
#    it prints is a failure. A copy of idsyncd.service with a misspelt key is
#    checked first to show that the check catches one.
# 3. `systemd-analyze security --offline=true`: the overall exposure of each
#    service must be 2.0 or lower.
# 4. systemd-sysusers and systemd-tmpfiles, run on the staged root, must create
#    the idsync user and /var/lib/idsync owned by it, /etc/idsync root:idsync.
set -euo pipefail

build=$(cd "${1:?usage: staging_verify.sh BUILD_DIR}" && pwd)
max_exposure=2.0
work=$(mktemp -d /tmp/idsync-staging.XXXXXX)
trap 'rm -rf "$work"' EXIT
root=$work/root
fail=0
bad() { echo "FAIL: $*"; fail=1; }

echo "== staging install into $root"
DESTDIR=$root cmake --install "$build" --prefix /usr >"$work/install.log" 2>&1 ||
  { cat "$work/install.log"; echo "FAIL: cmake --install"; exit 1; }

units_dir=$root/usr/lib/systemd/system
units=(idsyncd.service idsyncd@.service idsync-sync.service idsync-sync.timer)
for u in "${units[@]}"; do
  [ -f "$units_dir/$u" ] || bad "$u not installed in /usr/lib/systemd/system"
done
for f in usr/bin/idsync usr/bin/idsyncd usr/lib/sysusers.d/idsync.conf usr/lib/tmpfiles.d/idsync.conf \
         usr/share/man/man8/idsync.8.gz usr/share/man/man8/idsyncd.8.gz \
         usr/share/doc/idsync/examples/idsync.yaml etc/idsync/idsync.yaml; do
  [ -e "$root/$f" ] || bad "/$f not installed"
done
[ "$fail" = 0 ] || exit 1

# What verify needs from outside our files: the host's units, kill, usr-merge links.
cp -an /usr/lib/systemd/system/. "$units_dir/"
cp -n /usr/bin/kill "$root/usr/bin/kill"
for d in bin lib sbin; do [ -e "$root/$d" ] || ln -s "usr/$d" "$root/$d"; done
export MANPATH=$root/usr/share/man

verify() {  # verify UNIT -> prints every complaint; returns 1 if there was any
  local out rc=0
  out=$(systemd-analyze verify --root="$root" "$1" 2>&1) || rc=$?
  if [ "$rc" != 0 ] || [ -n "$out" ]; then
    printf '%s\n' "$out"
    return 1
  fi
}

echo "== the check catches a misspelt key"
sed 's/^ProtectSystem=strict/ProtectSystm=strict/' "$units_dir/idsyncd.service" >"$units_dir/idsync-selftest.service"
if verify idsync-selftest.service >/dev/null; then
  bad "systemd-analyze verify did not flag a misspelt key: the check cannot fail"
fi
rm -f "$units_dir/idsync-selftest.service"

echo "== systemd-analyze verify"
for u in idsyncd.service idsyncd@demo.service idsync-sync.service idsync-sync.timer; do
  if verify "$u"; then echo "ok   $u"; else bad "systemd-analyze verify $u"; fi
done

echo "== systemd-analyze security --offline=true (max exposure $max_exposure)"
for u in idsyncd.service idsyncd@demo.service idsync-sync.service; do
  out=$(systemd-analyze security --offline=true --root="$root" "$u" 2>&1) || true
  level=$(printf '%s\n' "$out" | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
  if [ -z "$level" ]; then
    printf '%s\n' "$out" | tail -5
    bad "no exposure level for $u"
  elif awk -v l="$level" -v m="$max_exposure" 'BEGIN { exit !(l <= m) }'; then
    echo "ok   $u exposure $level"
  else
    printf '%s\n' "$out" | grep '✗' || true
    bad "$u exposure $level is above $max_exposure"
  fi
done

echo "== sysusers.d and tmpfiles.d on the staged root"
systemd-sysusers --root="$root" "$root/usr/lib/sysusers.d/idsync.conf" >/dev/null 2>&1 ||
  bad "systemd-sysusers failed"
entry=$(grep '^idsync:' "$root/etc/passwd" || true)
[ -n "$entry" ] || bad "sysusers did not create the idsync user"
case "$entry" in *:/var/lib/idsync:/usr/sbin/nologin) ;; *) bad "idsync user entry: $entry" ;; esac
grep -q '^idsync:' "$root/etc/group" || bad "sysusers did not create the idsync group"
uid=$(printf '%s\n' "$entry" | cut -d: -f3)
gid=$(grep '^idsync:' "$root/etc/group" | cut -d: -f3)
systemd-tmpfiles --root="$root" --create "$root/usr/lib/tmpfiles.d/idsync.conf" >/dev/null 2>&1 ||
  bad "systemd-tmpfiles failed"
got=$(stat -c '%a %u %g' "$root/var/lib/idsync" 2>/dev/null || echo missing)
[ "$got" = "750 $uid $gid" ] || bad "/var/lib/idsync is '$got', want '750 $uid $gid'"
got=$(stat -c '%a %u %g' "$root/etc/idsync" 2>/dev/null || echo missing)
[ "$got" = "750 0 $gid" ] || bad "/etc/idsync is '$got', want '750 0 $gid'"

if [ "$fail" = 0 ]; then echo "PASS"; else echo "FAILED"; fi
exit "$fail"
