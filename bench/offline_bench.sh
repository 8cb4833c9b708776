#!/usr/bin/env bash
# Measures the offline review paths at USERS people (default 100,000) on a
# generated company (gen-directory, seed 7, a tenth as many groups) whose
# rules give everyone access:
#   1. `idsync plan --account-state` against a state file in sync with the
#      rules (made from `plan --json` against an empty account): time, peak
#      RSS, the file's size;
#   2. `idsync explain --all --json`: time, peak RSS, the output's size;
#   3. the floor both share: `idsync explain ONE` (the same read and mapping
#      with details, one person written).
# Usage: bench/offline_bench.sh [BUILD_DIR]   Environment: USERS.
# Peak RSS by GNU time. Exits non-zero naming the command when one fails or
# when the state file is not in sync (the plan has operations).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
users=${USERS:-100000}
idsync=$build/daemon/idsync
gen=$build/tools/gen-directory/gen-directory
for binary in "$idsync" "$gen"; do
  [ -x "$binary" ] || { echo "offline_bench.sh: build $binary first" >&2; exit 2; }
done
work=$(mktemp -d /tmp/idsync-offline-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
fail() { echo "offline_bench.sh: $*" >&2; exit 1; }

"$gen" --users "$users" --groups "$((users / 10))" --seed 7 >"$work/company.ldif" 2>/dev/null ||
  fail "$gen --users $users failed"
cat >"$work/idsync.yaml" <<YAML
store: sqlite://$work/state.db
sources:
  - name: hr
    type: ldif
    path: $work/company.ldif
    users: {base: "ou=people,dc=corp,dc=example", filter: "(objectClass=inetOrgPerson)", email: mail, name: cn}
    groups: {base: "ou=groups,dc=corp,dc=example", filter: "(objectClass=groupOfNames)", name: cn, member: member, nested: true}
permissions: {catalog: builtin}
rules:
  - {name: everyone, match: {email: "*@corp.example"}, preset: content-editor, projects: [support-bot]}
  - {name: qa, match: {group: "qa-*"}, preset: qa-analyst}
  - {name: admins, match: {group: "Studio Admins"}, role: admin}
safety: {max_removals: none, max_changes: none}
YAML
echo '{"projects": [{"id": "p_support", "name": "support-bot"}], "users": []}' >"$work/empty.json"
"$idsync" --config "$work/idsync.yaml" plan --json --account-state "$work/empty.json" \
  >"$work/plan.json" || fail "plan against an empty account failed"
python3 - "$work/plan.json" "$work/insync.json" <<'PY'
import json, sys
plan = json.load(open(sys.argv[1]))
users = []
for i, op in enumerate(plan["operations"]):
    users.append({"id": "u%d" % i, "email": op["email"], "name": op.get("name", ""),
                  "role": op["role"], "status": "active",
                  "permissions": {k: v for k, v in op["permissions"].items() if v != "none"},
                  "projects": ["p_support"] if op["projects"] else [], "managed": True})
json.dump({"projects": [{"id": "p_support", "name": "support-bot"}], "users": users},
          open(sys.argv[2], "w"))
PY

timed() {  # timed LABEL COMMAND...: one line with seconds and peak MB
  local label=$1
  shift
  /usr/bin/time -f "%e %M" -o "$work/time" "$@" >"$work/out" 2>"$work/err" ||
    { cat "$work/err" >&2; fail "$* exited non-zero"; }
  read -r secs kb <"$work/time"
  printf '%-34s %6s s %6d MB' "$label" "$secs" "$((kb / 1024))"
}

"$idsync" --config "$work/idsync.yaml" plan --json --account-state "$work/insync.json" |
  python3 -c 'import json, sys; p = json.load(sys.stdin); sys.exit(1 if p["operations"] else 0)' ||
  fail "the state file is not in sync with the rules"
one=$(grep -m1 '^mail: ' "$work/company.ldif" | cut -d' ' -f2)
echo "$users people; state file $(($(stat -c %s "$work/insync.json") / 1000000)) MB"
timed "plan --account-state (in sync)" "$idsync" --config "$work/idsync.yaml" plan \
  --account-state "$work/insync.json"
echo
timed "explain --all --json" "$idsync" --config "$work/idsync.yaml" explain --all --json
echo "  output $(($(stat -c %s "$work/out") / 1000000)) MB"
timed "explain ONE (read and map, floor)" "$idsync" --config "$work/idsync.yaml" explain "$one"
echo
