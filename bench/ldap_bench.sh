#!/usr/bin/env bash
# Measures the `ldap` source on a generated company (gen-directory, seed 7:
# 100,000 users, 10,000 groups by default) loaded offline (slapadd) into a
# throwaway slapd over ldap:// on loopback, all in one run:
#   1. the floor: `ldapsearch -x -E pr=1000/noprompt` dumping the same users
#      and groups with the attributes idsync asks for;
#   2. `idsync plan` (ldap source) against an account already in sync (the
#      account emulator, brought in sync by one `idsync apply` first):
#      wall time and peak RSS (GNU time), three runs; each must exit 0 and
#      plan nothing but unchanged users;
#   3. after a first full refresh, 100 changed entries followed one by one
#      through LdapSource::Follow (syncrepl), timed from the confirmed modify
#      until the people it names are re-mapped through the rules
#      (ldap_watch_bench). This stops at the mapping: the reconcile against
#      the account and the account's write, which idsyncd's partial run does
#      next, are not in the figure.
# Usage: bench/ldap_bench.sh [BUILD_DIR] [USERS] [GROUPS]
# BUILD_DIR defaults to the tree's build/; a relative one is taken from the
# current directory.
# LDAP_BENCH_KEEP=DIR keeps the directory, the store and the account (as an
# emulator state file) in DIR; a later run with the same DIR skips the
# generation, the slapadd and the ~7 min setup apply: it brings the account
# back in sync with the kept directory (step 3 changes it) with one apply,
# then measures.
# Needs slapd, ldap-utils, GNU time; BUILD_DIR holds daemon/idsync,
# tools/account-emulator, tools/gen-directory and bench/ldap_watch_bench (not
# needed with LDAP_BENCH_SKIP_WATCH=1). Exits non-zero, naming the command,
# when a command fails or a measurement's premise does not hold.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$root/build}" && pwd) || { echo "ldap_bench.sh: no build directory ${1:-$root/build}" >&2; exit 2; }
cd "$root"
users=${2:-100000}
groups=${3:-$((users / 10))}
idsync=$build/daemon/idsync
emulator=$build/tools/account-emulator/account-emulator
gen=$build/tools/gen-directory/gen-directory
watch_bench=$build/bench/ldap_watch_bench
for binary in "$idsync" "$emulator" "$gen"; do
  [ -x "$binary" ] || { echo "ldap_bench.sh: build $binary first" >&2; exit 2; }
done
if [ "${LDAP_BENCH_SKIP_WATCH:-0}" != 1 ] && [ ! -x "$watch_bench" ]; then
  echo "ldap_bench.sh: build $watch_bench first (cmake -DIDSYNC_BUILD_BENCH=ON), or set LDAP_BENCH_SKIP_WATCH=1" >&2
  exit 2
fi
keep=${LDAP_BENCH_KEEP:-}
if [ -n "$keep" ]; then
  mkdir -p "$keep"
  work=$(cd "$keep" && pwd)
else
  work=$(mktemp -d /tmp/idsync-lb.XXXXXX)
fi
reuse=0
[ -n "$keep" ] && [ -f "$work/setup.done" ] && reuse=1
slapd_pid=""
emulator_pid=""
cleanup() {
  [ -n "$emulator_pid" ] && kill "$emulator_pid" 2>/dev/null && wait "$emulator_pid" 2>/dev/null
  [ -n "$slapd_pid" ] && kill "$slapd_pid" 2>/dev/null && wait "$slapd_pid" 2>/dev/null
  [ -z "$keep" ] && rm -rf "$work"
  return 0
}
trap cleanup EXIT
export IDSYNC_BENCH_TOKEN=bench-token
export IDSYNC_BENCH_ADMIN_PW=secret
suffix="dc=corp,dc=example"
fail() {  # $1: message; the rest: files to show first
  local message=$1
  shift
  for file in "$@"; do [ -f "$file" ] && cat "$file" >&2; done
  echo "ldap_bench.sh: $message" >&2
  exit 1
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# --- the directory --------------------------------------------------------------
if [ "$reuse" = 1 ]; then
  echo "0. reusing the directory, store and account kept in $work"
else
rm -rf "$work/slapd.d" "$work/data" "$work/state.db"
"$gen" --users "$users" --groups "$groups" --seed 7 2>"$work/gen.err" | sed "1{/^version: 1\$/d}" >"$work/company.ldif" ||
  fail "$gen --users $users --groups $groups exited ${PIPESTATUS[0]}" "$work/gen.err"
mkdir -p "$work/slapd.d" "$work/data"
chmod 700 "$work/slapd.d" "$work/data"
cat >"$work/config.ldif" <<LDIF
dn: cn=config
objectClass: olcGlobal
cn: config
olcPidFile: $work/slapd.pid
olcLogLevel: none
olcToolThreads: 1

dn: cn=module{0},cn=config
objectClass: olcModuleList
cn: module{0}
olcModulePath: /usr/lib/ldap
olcModuleLoad: {0}back_mdb
olcModuleLoad: {1}syncprov

dn: cn=schema,cn=config
objectClass: olcSchemaConfig
cn: schema

include: file:///etc/ldap/schema/core.ldif

include: file:///etc/ldap/schema/cosine.ldif

include: file:///etc/ldap/schema/inetorgperson.ldif

include: file:///etc/ldap/schema/nis.ldif

dn: olcDatabase={-1}frontend,cn=config
objectClass: olcDatabaseConfig
objectClass: olcFrontendConfig
olcDatabase: {-1}frontend

dn: olcDatabase={1}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {1}mdb
olcSuffix: $suffix
olcRootDN: cn=admin,$suffix
olcRootPW: $IDSYNC_BENCH_ADMIN_PW
olcDbDirectory: $work/data
olcDbMaxSize: 4294967296
olcDbNoSync: TRUE
olcDbIndex: objectClass eq
olcDbIndex: uid,cn,mail eq
olcDbIndex: member eq
olcDbIndex: entryCSN,entryUUID eq
olcSizeLimit: unlimited
olcTimeLimit: unlimited
olcAccess: {0}to attrs=userPassword by self write by anonymous auth by * none
olcAccess: {1}to * by * read

dn: olcOverlay={0}syncprov,olcDatabase={1}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcSyncProvConfig
olcOverlay: {0}syncprov
olcSpCheckpoint: 100 10
olcSpSessionlog: 10000
LDIF
slapadd -n0 -F "$work/slapd.d" -l "$work/config.ldif" >"$work/slapadd.log" 2>&1 ||
  fail "slapadd -n0 of the slapd configuration exited $?" "$work/slapadd.log"
load_start=$(date +%s.%N)
slapadd -q -w -F "$work/slapd.d" -b "$suffix" -l "$work/company.ldif" >"$work/slapadd.log" 2>&1 ||
  fail "slapadd of $work/company.ldif exited $?" "$work/slapadd.log"
load_end=$(date +%s.%N)
fi
port=$(free_port)
url="ldap://127.0.0.1:$port"
ulimit -n 4096
rm -f "$work/ldapi"
/usr/sbin/slapd -F "$work/slapd.d" -d none -h "$url/ ldapi://$(printf %s "$work/ldapi" | sed 's#/#%2F#g')/" \
  </dev/null >>"$work/slapd.log" 2>&1 &
slapd_pid=$!
slapd_up=0
for _ in $(seq 300); do
  if ldapsearch -x -H "$url" -s base -b "" namingContexts >/dev/null 2>&1; then
    slapd_up=1
    break
  fi
  kill -0 "$slapd_pid" 2>/dev/null || fail "slapd exited during start-up" "$work/slapd.log"
  sleep 0.1
done
[ "$slapd_up" = 1 ] || fail "slapd did not answer on $url within 30 s" "$work/slapd.log"
[ "$reuse" = 1 ] || awk -v a="$load_start" -v b="$load_end" -v u="$users" -v g="$groups" \
  'BEGIN { printf "0. slapadd of %d users and %d groups: %.1f s\n", u, g, b - a }'

# --- 1. the floor ----------------------------------------------------------------
floor() {
  set -euo pipefail
  ldapsearch -x -LLL -H "$url" -b "ou=people,$suffix" -E pr=1000/noprompt \
    "(objectClass=inetOrgPerson)" mail cn entryUUID >/dev/null
  ldapsearch -x -LLL -H "$url" -b "ou=groups,$suffix" -E pr=1000/noprompt \
    "(objectClass=groupOfNames)" cn member entryUUID >/dev/null
}
floors=()
for _ in 1 2 3; do
  rc=0
  /usr/bin/time -f "%e %M" -o "$work/time" bash -c "$(declare -f floor); url=$url suffix=$suffix floor" ||
    rc=$?
  [ "$rc" = 0 ] || fail "ldapsearch -H $url (the floor, users then groups) exited $rc"
  read -r secs kb <"$work/time"
  floors+=("$secs")
done
echo "1. ldapsearch -E pr=1000/noprompt, users then groups: ${floors[*]} s"

# --- 2. idsync plan against an account in sync ----------------------------------
# (LDAP_BENCH_SKIP_PLAN=1 skips it, and its 100,000-invite setup.)
write_config() {  # $1: the account's port
  cat >"$work/idsync.yaml" <<YAML
account:
  url: http://127.0.0.1:$1
  token: \${env:IDSYNC_BENCH_TOKEN}
  max_requests_per_second: 100000
  concurrency: 8
  retry_for: 10m
store: sqlite://$work/state.db
sources:
  - name: hr
    type: ldap
    url: $url
    page_size: 1000
    timeout: 60s
    watch: true
    watch_interval: 1s
    users: {base: "ou=people,$suffix", filter: "(objectClass=inetOrgPerson)", email: mail, name: cn}
    groups: {base: "ou=groups,$suffix", filter: "(objectClass=groupOfNames)", name: cn, member: member}
permissions: {catalog: account}
rules:
  - {name: everyone, match: {email: "*@corp.example"}, preset: content-editor, projects: [support-bot]}
  - {name: qa, match: {group: "qa-*"}, preset: qa-analyst}
  - {name: admins, match: {group: "Studio Admins"}, role: admin}
safety: {max_removals: 10, max_changes: none}
YAML
}
write_config 1
if [ "${LDAP_BENCH_SKIP_PLAN:-0}" != 1 ]; then
  rm -f "$work/port"
  if [ "$reuse" = 1 ]; then
    cp "$work/account.json" "$work/seed.json"
  else
    echo '{"projects": [{"id": "p_support", "name": "support-bot"}], "users": []}' >"$work/seed.json"
  fi
  "$emulator" --listen 127.0.0.1:0 --token "$IDSYNC_BENCH_TOKEN" --seed "$work/seed.json" \
    --faults '{}' --port-file "$work/port" --random-seed 1 >"$work/emulator.log" 2>&1 &
  emulator_pid=$!
  # (A kept account of 100,000 users takes a while to load.)
  for _ in $(seq 2400); do
    [ -s "$work/port" ] && break
    kill -0 "$emulator_pid" 2>/dev/null || fail "$emulator exited during start-up" "$work/emulator.log"
    sleep 0.05
  done
  [ -s "$work/port" ] || fail "$emulator did not write its port within 120 s" "$work/emulator.log"
  write_config "$(cat "$work/port")"
  # The setup apply; on a kept setup, the apply that brings the account back
  # in sync with the directory (step 3 of an earlier run changed it).
  rc=0
  setup_start=$(date +%s.%N)
  "$idsync" --config "$work/idsync.yaml" apply >"$work/apply.out" 2>"$work/apply.err" || rc=$?
  setup_end=$(date +%s.%N)
  [ "$rc" = 0 ] ||
    fail "$idsync --config $work/idsync.yaml apply exited $rc" "$work/apply.out" "$work/apply.err"
  if [ "$reuse" = 1 ]; then
    awk -v a="$setup_start" -v b="$setup_end" -v plan="$(grep -m1 '^Plan:' "$work/apply.out")" \
      'BEGIN { printf "2a. apply bringing the kept account in sync (%s): %.1f s\n", plan, b - a }'
  else
    awk -v a="$setup_start" -v b="$setup_end" 'BEGIN { printf "2a. first apply (setup, every user invited): %.1f s\n", b - a }'
  fi
  if [ -n "$keep" ]; then
    curl -sf "http://127.0.0.1:$(cat "$work/port")/_emulator/state" >"$work/account.json" ||
      fail "GET /_emulator/state from the account emulator failed"
    touch "$work/setup.done"
  fi
  # idsync plan exits 0 when it ran and nothing failed (with or without
  # operations), 1 when a source or the account failed, 2 on a bad
  # configuration, 3 when a safety limit blocks the plan (docs/operations.md,
  # "Exit status"). Only 0 is a measurement; an account in sync also plans
  # nothing but unchanged users.
  for _ in 1 2 3; do
    rc=0
    /usr/bin/time -f "%e %M" -o "$work/time" "$idsync" --config "$work/idsync.yaml" plan --json \
      >"$work/plan.json" 2>"$work/plan.err" || rc=$?
    [ "$rc" = 0 ] ||
      fail "$idsync --config $work/idsync.yaml plan --json exited $rc (expected 0)" "$work/plan.err"
    read -r secs kb <"$work/time"
    summary=$(python3 - "$work/plan.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))["summary"]
print(f"{s['invite'] + s['update'] + s['remove'] + s['revoke']} {s}")
PY
    ) || fail "$idsync plan --json printed no readable summary" "$work/plan.json" "$work/plan.err"
    read -r operations summary <<<"$summary"
    [ "$operations" = 0 ] ||
      fail "the account is not in sync: idsync plan has $operations operations: $summary"
    awk -v s="$secs" -v kb="$kb" -v sum="$summary" \
      'BEGIN { printf "2. idsync plan (ldap source, account in sync): %.2f s, peak RSS %.0f MB, exit 0, %s\n", s, kb / 1024, sum }'
  done
fi

# The read alone (LdapSource::Read, the part of the plan that is the source's).
# (LDAP_BENCH_PERF=FILE records it with perf.)
if [ -x "$watch_bench" ]; then
  rc=0
  /usr/bin/time -f "%e %M" -o "$work/time" ${LDAP_BENCH_PERF:+perf record -g -o "$LDAP_BENCH_PERF"} \
    "$watch_bench" --config "$work/idsync.yaml" --source hr --read-only 1 >"$work/read.out" || rc=$?
  [ "$rc" = 0 ] || fail "$watch_bench --config $work/idsync.yaml --source hr --read-only 1 exited $rc" "$work/read.out"
  sed 's/^/2b. /' "$work/read.out"
  read -r secs kb <"$work/time"
  awk -v kb="$kb" 'BEGIN { printf "2b. peak RSS of that read: %.0f MB\n", kb / 1024 }'
else
  echo "2b. skipped: $watch_bench not built (cmake -DIDSYNC_BUILD_BENCH=ON)"
fi

# --- 3. a watched change: modify confirmed -> people re-mapped -----------------
# (LDAP_BENCH_SKIP_WATCH=1 skips it.) Not timed: the reconcile and the write
# to the account that follow in idsyncd.
if [ "${LDAP_BENCH_SKIP_WATCH:-0}" != 1 ]; then
  rc=0
  "$watch_bench" --config "$work/idsync.yaml" --source hr --admin-dn "cn=admin,$suffix" \
    --changes 100 --group-every 10 >"$work/watch.out" || rc=$?
  [ "$rc" = 0 ] ||
    fail "$watch_bench --config $work/idsync.yaml --source hr --changes 100 --group-every 10 exited $rc" "$work/watch.out"
  sed 's/^/3. /' "$work/watch.out"
fi
