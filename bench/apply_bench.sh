#!/usr/bin/env bash
# Measures `idsync apply` against the account emulator over loopback:
#   1. 10,000 invites, no rate limit anywhere (operations per second);
#   2. 10,000 invites with the emulator limited to 200 requests/s and idsync
#      configured to match (the floor is 10,000 / 200 = 50 s);
#   3. a no-op apply against a 100,000-user account: time, peak memory, writes.
# Usage: bench/apply_bench.sh [BUILD_DIR] [SCENARIO...]   (scenarios: 1 2 3; default all)
# BUILD_DIR defaults to the tree's build/; a relative one is taken from the
# current directory. Environment: USERS (10000, the invites of 1 and 2),
# NOOP_USERS (100000, the account of 3), CONCURRENCY (8, account.concurrency of 1
# and 3).
# Prints one line per scenario; bench/README.md records the numbers. Exits
# non-zero, naming the command, when a command fails or a scenario's premise
# does not hold (scenario 3's second apply writes).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$root/build}" && pwd) || { echo "apply_bench.sh: no build directory ${1:-$root/build}" >&2; exit 2; }
if [ $# -gt 0 ]; then shift; fi
cd "$root"
scenarios=${*:-1 2 3}
users=${USERS:-10000}
noop_users=${NOOP_USERS:-100000}
concurrency=${CONCURRENCY:-8}
idsync=$build/daemon/idsync
emulator=$build/tools/account-emulator/account-emulator
gen=$build/tools/gen-directory/gen-directory
command -v sqlite3 >/dev/null || { echo "apply_bench.sh: needs the sqlite3 shell (apt install sqlite3)" >&2; exit 2; }
for binary in "$idsync" "$emulator" "$gen"; do
  [ -x "$binary" ] || { echo "apply_bench.sh: build $binary first" >&2; exit 2; }
done
for s in $scenarios; do
  case $s in
    1 | 2 | 3) ;;
    *) echo "apply_bench.sh: no scenario $s (1, 2 or 3)" >&2; exit 2 ;;
  esac
done
work=$(mktemp -d /tmp/idsync-bench.XXXXXX)
emulator_pid=""
stop_emulator() {
  if [ -n "$emulator_pid" ]; then
    # Stopped on purpose: its exit status after SIGTERM says nothing.
    kill "$emulator_pid" 2>/dev/null || true
    wait "$emulator_pid" 2>/dev/null || true
    emulator_pid=""
  fi
}
cleanup() {
  stop_emulator
  rm -rf "$work"
}
trap cleanup EXIT
export IDSYNC_BENCH_TOKEN=bench-token
fail() {  # $1: message; the rest: files to show first
  local message=$1
  shift
  for file in "$@"; do [ -f "$file" ] && cat "$file" >&2; done
  echo "apply_bench.sh: $message" >&2
  exit 1
}
commas() { echo "$1" | sed ':a;s/\B[0-9]\{3\}\>/,&/;ta'; }

start_emulator() {  # $1: faults JSON
  stop_emulator
  rm -f "$work/port"
  echo '{"projects": [{"id": "p_support", "name": "support-bot"}], "users": []}' >"$work/seed.json"
  "$emulator" --listen 127.0.0.1:0 --token "$IDSYNC_BENCH_TOKEN" --seed "$work/seed.json" \
    --faults "$1" --port-file "$work/port" --random-seed 1 >"$work/emulator.log" 2>&1 &
  emulator_pid=$!
  for _ in $(seq 200); do
    [ -s "$work/port" ] && break
    kill -0 "$emulator_pid" 2>/dev/null || fail "$emulator exited during start-up" "$work/emulator.log"
    sleep 0.05
  done
  [ -s "$work/port" ] || fail "$emulator did not write its port within 10 s" "$work/emulator.log"
  port=$(cat "$work/port")
}

write_config() {  # $1: users, $2: max_requests_per_second, $3: concurrency
  "$gen" --users "$1" --groups "$(($1 / 10))" --seed 7 >"$work/company.ldif" 2>"$work/gen.err" ||
    fail "$gen --users $1 exited $?" "$work/gen.err"
  rm -f "$work/state.db"*
  cat >"$work/idsync.yaml" <<YAML
account:
  url: http://127.0.0.1:$port
  token: \${env:IDSYNC_BENCH_TOKEN}
  max_requests_per_second: $2
  concurrency: $3
  retry_for: 10m
store: sqlite://$work/state.db
sources:
  - name: hr
    type: ldif
    path: $work/company.ldif
    users: {base: "ou=people,dc=corp,dc=example", filter: "(objectClass=inetOrgPerson)", email: mail, name: cn}
    groups: {base: "ou=groups,dc=corp,dc=example", filter: "(objectClass=groupOfNames)", name: cn, member: member}
permissions: {catalog: account}
rules:
  - {name: everyone, match: {email: "*@corp.example"}, preset: content-editor, projects: [support-bot]}
  - {name: qa, match: {group: "qa-*"}, preset: qa-analyst}
  - {name: admins, match: {group: "Studio Admins"}, role: admin}
safety: {max_removals: 10, max_changes: none}
YAML
}

# Runs apply under GNU time; sets secs and kb, keeps the output in $work/apply.out.
# Any exit status but 0 fails the benchmark (apply exits 1 when something failed
# or is left pending, 3 when a safety limit refused the plan).
timed_apply() {
  local rc=0
  /usr/bin/time -f "%e %M" -o "$work/time" "$idsync" --config "$work/idsync.yaml" apply \
    >"$work/apply.out" 2>"$work/apply.err" || rc=$?
  [ "$rc" = 0 ] ||
    fail "$idsync --config $work/idsync.yaml apply exited $rc" "$work/apply.out" "$work/apply.err"
  read -r secs kb <"$work/time"
  [ -z "${SHOW_TIMINGS:-}" ] || grep "^Timings:" "$work/apply.out" >&2
}

# Sets w (writes the emulator applied since the log was last reset) and
# throttled (requests it answered 429).
count_writes() {
  local counts
  counts=$(python3 - "$port" <<'PY'
import json, sys, urllib.request
log = json.load(urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/_emulator/requests"))["requests"]
print(sum(1 for r in log if r["method"] != "GET" and r["applied"]),
      sum(1 for r in log if r["status"] == 429))
PY
  ) || fail "reading the emulator's request log failed"
  read -r w throttled <<<"$counts"
}

reset_log() {
  curl -sf -X POST --data "" "http://127.0.0.1:$port/_emulator/reset-log" >/dev/null ||
    fail "POST /_emulator/reset-log to the emulator failed"
}

for s in $scenarios; do
  case $s in
    1)
      start_emulator '{}'
      write_config "$users" 100000 "$concurrency"
      timed_apply
      count_writes
      awk -v n="$(commas "$users")" -v s="$secs" -v w="$w" -v kb="$kb" 'BEGIN { printf "1. %s invites, no limit: %d writes in %.1f s = %.0f ops/s, peak %.0f MB\n", n, w, s, w / s, kb / 1024 }'
      ;;
    2)
      start_emulator '{"rate_limit_per_second": 200, "rate_limit_burst": 10}'
      write_config "$users" 200 8
      timed_apply
      count_writes
      awk -v n="$(commas "$users")" -v f="$(awk -v u="$users" 'BEGIN { print u / 200 }')" -v s="$secs" -v w="$w" -v t="$throttled" 'BEGIN { printf "2. %s invites at 200 requests/s: %d writes in %.1f s (floor %.1f s: %+.1f%%), %d answered 429\n", n, w, s, f, (s / f - 1) * 100, t }'
      ;;
    3)
      start_emulator '{}'
      write_config "$noop_users" 100000 "$concurrency"
      timed_apply
      count_writes
      echo "3a. first apply of $(commas "$noop_users") users (setup): $w writes in $secs s"
      # What the store keeps of those changes: the audit log (never pruned)
      # and the rest, by table with its indexes (SQLite's dbstat).
      sqlite3 "$work/state.db" "PRAGMA wal_checkpoint(TRUNCATE);" >/dev/null ||
        fail "sqlite3 could not checkpoint $work/state.db"
      read -r audit_rows audit_bytes other_bytes < <(sqlite3 -separator ' ' "$work/state.db" "
        SELECT (SELECT count(*) FROM audit),
               (SELECT sum(d.pgsize) FROM dbstat d JOIN sqlite_schema m ON m.name = d.name
                WHERE m.tbl_name = 'audit'),
               (SELECT sum(d.pgsize) FROM dbstat d JOIN sqlite_schema m ON m.name = d.name
                WHERE m.tbl_name <> 'audit')") || fail "sqlite3 could not read $work/state.db"
      awk -v r="$audit_rows" -v a="$audit_bytes" -v o="$other_bytes" -v f="$(stat -c %s "$work/state.db")" 'BEGIN { printf "3b. audit log: %d entries in %.1f MB (%.0f bytes each, %.1f MB per 100,000); other tables %.1f MB; file %.1f MB\n", r, a / 1e6, a / r, a / r * 100000 / 1e6, o / 1e6, f / 1e6 }'

      reset_log
      timed_apply
      count_writes
      [ "$w" = 0 ] || fail "scenario 3: the second apply was not a no-op: $w writes" "$work/apply.out"
      awk -v n="$(commas "$noop_users")" -v s="$secs" -v w="$w" -v kb="$kb" 'BEGIN { printf "3. no-op apply, %s-user account: %.1f s, peak %.0f MB, %d writes\n", n, s, kb / 1024, w }'
      grep '^Timings:' "$work/apply.out" | sed 's/^/   /' || fail "apply printed no Timings: line" "$work/apply.out"
      ;;
  esac
done
