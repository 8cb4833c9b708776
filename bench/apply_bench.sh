#!/usr/bin/env bash
# Measures `idsync apply` against the account emulator over loopback:
#   1. 10,000 invites, no rate limit anywhere (operations per second);
#   2. 10,000 invites with the emulator limited to 200 requests/s and idsync
#      configured to match (the floor is 10,000 / 200 = 50 s);
#   3. a no-op apply against a 100,000-user account: time, peak memory, writes.
# Usage: bench/apply_bench.sh [BUILD_DIR] [SCENARIO...]   (scenarios: 1 2 3; default all)
# Prints one line per scenario; bench/README.md records the numbers.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
shift || true
scenarios=${*:-1 2 3}
idsync=$PWD/$build/daemon/idsync
emulator=$PWD/$build/tools/account-emulator/account-emulator
gen=$PWD/$build/tools/gen-directory/gen-directory
work=$(mktemp -d /tmp/idsync-bench.XXXXXX)
emulator_pid=""
cleanup() {
  [ -n "$emulator_pid" ] && kill "$emulator_pid" 2>/dev/null && wait "$emulator_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
export IDSYNC_BENCH_TOKEN=bench-token

start_emulator() {  # $1: faults JSON
  [ -n "$emulator_pid" ] && kill "$emulator_pid" && wait "$emulator_pid" 2>/dev/null || true
  rm -f "$work/port"
  echo '{"projects": [{"id": "p_support", "name": "support-bot"}], "users": []}' >"$work/seed.json"
  "$emulator" --listen 127.0.0.1:0 --token "$IDSYNC_BENCH_TOKEN" --seed "$work/seed.json" \
    --faults "$1" --port-file "$work/port" --random-seed 1 >/dev/null 2>&1 &
  emulator_pid=$!
  for _ in $(seq 200); do [ -s "$work/port" ] && break; sleep 0.05; done
  port=$(cat "$work/port")
}

write_config() {  # $1: users, $2: max_requests_per_second, $3: concurrency
  "$gen" --users "$1" --groups "$(($1 / 10))" --seed 7 >"$work/company.ldif" 2>/dev/null
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

# Runs apply; prints "SECONDS PEAK_KB" (GNU time) and keeps the output in $work/apply.out.
timed_apply() {
  /usr/bin/time -f "%e %M" -o "$work/time" "$idsync" --config "$work/idsync.yaml" apply \
    >"$work/apply.out" 2>"$work/apply.err" || { cat "$work/apply.out" "$work/apply.err" >&2; exit 1; }
  cat "$work/time"
}

writes() {  # writes the emulator applied since the log was last reset
  python3 - "$port" <<'PY'
import json, sys, urllib.request
log = json.load(urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/_emulator/requests"))["requests"]
print(sum(1 for r in log if r["method"] != "GET" and r["applied"]),
      sum(1 for r in log if r["status"] == 429))
PY
}

reset_log() { python3 -c "import urllib.request as u; u.urlopen(u.Request('http://127.0.0.1:$port/_emulator/reset-log', method='POST'))"; }

for s in $scenarios; do
  case $s in
    1)
      start_emulator '{}'
      write_config 10000 100000 8
      read -r secs kb < <(timed_apply)
      read -r w throttled < <(writes)
      awk -v s="$secs" -v w="$w" -v kb="$kb" 'BEGIN { printf "1. 10,000 invites, no limit: %d writes in %.1f s = %.0f ops/s, peak %.0f MB\n", w, s, w / s, kb / 1024 }'
      ;;
    2)
      start_emulator '{"rate_limit_per_second": 200, "rate_limit_burst": 10}'
      write_config 10000 200 8
      read -r secs kb < <(timed_apply)
      read -r w throttled < <(writes)
      awk -v s="$secs" -v w="$w" -v t="$throttled" 'BEGIN { printf "2. 10,000 invites at 200 requests/s: %d writes in %.1f s (floor 50.0 s: %+.1f%%), %d answered 429\n", w, s, (s / 50 - 1) * 100, t }'
      ;;
    3)
      start_emulator '{}'
      write_config 100000 100000 8
      read -r secs kb < <(timed_apply)
      read -r w throttled < <(writes)
      echo "3a. first apply of 100,000 users (setup): $w writes in $secs s"
      reset_log
      read -r secs kb < <(timed_apply)
      read -r w throttled < <(writes)
      awk -v s="$secs" -v w="$w" -v kb="$kb" 'BEGIN { printf "3. no-op apply, 100,000-user account: %.1f s, peak %.0f MB, %d writes\n", s, kb / 1024, w }'
      grep '^Timings:' "$work/apply.out" | sed 's/^/   /'
      ;;
  esac
done
