#!/usr/bin/env bash
# Measures the `ldap` source on a generated company (gen-directory, seed 7:
# 100,000 users, 10,000 groups by default) loaded offline (slapadd) into a
# throwaway slapd over ldap:// on loopback, all in one run:
#   1. the floor: `ldapsearch -x -E pr=1000/noprompt` dumping the same users
#      and groups with the attributes idsync asks for;
#   2. `idsync plan` (ldap source) against an account already in sync (the
#      account emulator, brought in sync by one `idsync apply` first):
#      wall time and peak RSS (GNU time), three runs;
#   3. after a first full refresh, 100 changed entries followed one by one
#      through LdapSource::Follow (syncrepl) and mapped (ldap_watch_bench).
# Usage: bench/ldap_bench.sh [BUILD_DIR] [USERS] [GROUPS]
# LDAP_BENCH_KEEP=DIR keeps the directory, the store and the account (as an
# emulator state file) in DIR; a later run with the same DIR skips the
# generation, the slapadd and the ~7 min setup apply and measures at once.
# Needs slapd, ldap-utils, GNU time; BUILD_DIR holds daemon/idsync,
# tools/account-emulator, tools/gen-directory and bench/ldap_watch_bench.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
users=${2:-100000}
groups=${3:-$((users / 10))}
idsync=$PWD/$build/daemon/idsync
emulator=$PWD/$build/tools/account-emulator/account-emulator
gen=$PWD/$build/tools/gen-directory/gen-directory
watch_bench=$PWD/$build/bench/ldap_watch_bench
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
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# --- the directory --------------------------------------------------------------
if [ "$reuse" = 1 ]; then
  echo "0. reusing the directory, store and account kept in $work"
else
rm -rf "$work/slapd.d" "$work/data" "$work/state.db"
"$gen" --users "$users" --groups "$groups" --seed 7 2>/dev/null | sed "1{/^version: 1\$/d}" >"$work/company.ldif"
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
slapadd -n0 -F "$work/slapd.d" -l "$work/config.ldif" >/dev/null
load_start=$(date +%s.%N)
slapadd -q -w -F "$work/slapd.d" -b "$suffix" -l "$work/company.ldif" >"$work/slapadd.log" 2>&1 || { cat "$work/slapadd.log" >&2; exit 1; }
load_end=$(date +%s.%N)
fi
port=$(free_port)
url="ldap://127.0.0.1:$port"
ulimit -n 4096
rm -f "$work/ldapi"
/usr/sbin/slapd -F "$work/slapd.d" -d none -h "$url/ ldapi://$(printf %s "$work/ldapi" | sed 's#/#%2F#g')/" \
  </dev/null >>"$work/slapd.log" 2>&1 &
slapd_pid=$!
for _ in $(seq 300); do
  ldapsearch -x -H "$url" -s base -b "" namingContexts >/dev/null 2>&1 && break
  sleep 0.1
done
[ "$reuse" = 1 ] || awk -v a="$load_start" -v b="$load_end" -v u="$users" -v g="$groups" \
  'BEGIN { printf "0. slapadd of %d users and %d groups: %.1f s\n", u, g, b - a }'

# --- 1. the floor ----------------------------------------------------------------
floor() {
  ldapsearch -x -LLL -H "$url" -b "ou=people,$suffix" -E pr=1000/noprompt \
    "(objectClass=inetOrgPerson)" mail cn entryUUID >/dev/null
  ldapsearch -x -LLL -H "$url" -b "ou=groups,$suffix" -E pr=1000/noprompt \
    "(objectClass=groupOfNames)" cn member entryUUID >/dev/null
}
floors=()
for run in 1 2 3; do
  /usr/bin/time -f "%e %M" -o "$work/time" bash -c "$(declare -f floor); url=$url suffix=$suffix floor"
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
    --faults '{}' --port-file "$work/port" --random-seed 1 >/dev/null 2>&1 &
  emulator_pid=$!
  # (A kept account of 100,000 users takes a while to load.)
  for _ in $(seq 2400); do [ -s "$work/port" ] && break; sleep 0.05; done
  [ -s "$work/port" ] || { echo "the account emulator did not start" >&2; exit 1; }
  write_config "$(cat "$work/port")"
  if [ "$reuse" != 1 ]; then
    setup_start=$(date +%s.%N)
    "$idsync" --config "$work/idsync.yaml" apply >"$work/apply.out" 2>"$work/apply.err" ||
      { cat "$work/apply.out" "$work/apply.err" >&2; exit 1; }
    setup_end=$(date +%s.%N)
    awk -v a="$setup_start" -v b="$setup_end" 'BEGIN { printf "2a. first apply (setup, every user invited): %.1f s\n", b - a }'
    if [ -n "$keep" ]; then
      curl -sf "http://127.0.0.1:$(cat "$work/port")/_emulator/state" >"$work/account.json"
      touch "$work/setup.done"
    fi
  fi
  for run in 1 2 3; do
    rc=0
    /usr/bin/time -f "%e %M" -o "$work/time" "$idsync" --config "$work/idsync.yaml" plan --json \
      >"$work/plan.json" 2>"$work/plan.err" || rc=$?
    read -r secs kb <"$work/time"
    summary=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["summary"])' "$work/plan.json" 2>/dev/null || echo "?")
    awk -v s="$secs" -v kb="$kb" -v rc="$rc" -v sum="$summary" \
      'BEGIN { printf "2. idsync plan (ldap source, account in sync): %.2f s, peak RSS %.0f MB, exit %d, %s\n", s, kb / 1024, rc, sum }'
  done
fi

# The read alone (LdapSource::Read, the part of the plan that is the source's).
if [ -x "$watch_bench" ]; then
  /usr/bin/time -f "%e %M" -o "$work/time" ${LDAP_BENCH_PERF:+perf record -g -o "$LDAP_BENCH_PERF"} \
    "$watch_bench" --config "$work/idsync.yaml" --source hr --read-only 1 | sed 's/^/2b. /'
  read -r secs kb <"$work/time"
  awk -v kb="$kb" 'BEGIN { printf "2b. peak RSS of that read: %.0f MB\n", kb / 1024 }'
fi

# --- 3. a watched change reaching the plan --------------------------------------
# (LDAP_BENCH_SKIP_WATCH=1 skips it; LDAP_BENCH_PERF=FILE records the read in 2b with perf.)
if [ "${LDAP_BENCH_SKIP_WATCH:-0}" = 1 ]; then
  :
elif [ -x "$watch_bench" ]; then
  "$watch_bench" --config "$work/idsync.yaml" --source hr --admin-dn "cn=admin,$suffix" \
    --changes 100 --group-every 10 | sed 's/^/3. /'
else
  echo "3. skipped: $watch_bench not built (cmake -DIDSYNC_BUILD_BENCH=ON)"
fi
