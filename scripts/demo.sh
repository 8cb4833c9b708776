#!/usr/bin/env bash
# The demo. First offline: what every person in examples/ gets and why, and
# the plan against an example account state. Then live: a local account
# emulator, `idsync apply` into it, the account's users afterwards, a second
# apply that has nothing left to do, and the audit log. Everything it starts
# is stopped on exit or Ctrl-C; everything it writes is in a temporary folder.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${IDSYNC_BUILD_DIR:-build}
idsync=$build/daemon/idsync
emulator=$build/tools/account-emulator/account-emulator
config=examples/idsync.yaml

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

step "idsync validate: the example configuration ($config)"
"$idsync" --config "$config" validate

step "idsync explain --all: the access every person gets from the example directory"
"$idsync" --config "$config" explain --all

step "idsync explain chen@corp.example --json: one person, for scripts"
"$idsync" --config "$config" explain chen@corp.example --json

step "idsync plan --account-state: what would change in an example account (offline)"
set +e
"$idsync" --config "$config" plan --account-state examples/account-state.json
status=$?
set -e
echo "(plan exited with status $status: 0 nothing failed, 3 blocked by a safety limit)"

work=$(mktemp -d /tmp/idsync-demo.XXXXXX)
emulator_pid=""
cleanup() {
  if [ -n "$emulator_pid" ]; then kill "$emulator_pid" 2>/dev/null || true; wait "$emulator_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step "Starting the account emulator (a local stand-in for the account's API)"
export IDSYNC_DEMO_TOKEN=demo-token-$RANDOM$RANDOM
"$emulator" --listen 127.0.0.1:0 --token "$IDSYNC_DEMO_TOKEN" --seed examples/account-seed.json \
  --port-file "$work/port" >"$work/emulator.log" 2>&1 &
emulator_pid=$!
for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.05; done
port=$(cat "$work/port")
echo "listening on 127.0.0.1:$port; seeded with the owner, bruno (outdated access) and a vendor"

# The example configuration, pointed at the emulator with a store in $work.
{
  echo "account:"
  echo "  url: http://127.0.0.1:$port"
  echo "  token: \${env:IDSYNC_DEMO_TOKEN}"
  echo "store: sqlite://$work/state.db"
  sed -e "s#path: directory.ldif#path: $PWD/examples/directory.ldif#" \
      -e "s#path: contractors.ldif#path: $PWD/examples/contractors.ldif#" \
      -e "s#catalog: builtin#catalog: account#" "$config"
} >"$work/idsync.yaml"

show_users() {
  python3 - "$port" "$IDSYNC_DEMO_TOKEN" <<'PY'
import json, sys, urllib.request
port, token = sys.argv[1], sys.argv[2]
def get(path):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"Authorization": f"Bearer {token}"})
    return json.load(urllib.request.urlopen(req))
projects = {p["id"]: p["name"] for p in get("/projects")["projects"]}
users, cursor = [], None
while True:
    page = get("/users?limit=1000" + (f"&cursor={cursor}" if cursor else ""))
    users += page["users"]
    cursor = page.get("next_cursor")
    if not cursor: break
print(f"{'e-mail':26} {'role':7} {'status':8} {'projects':22} permissions")
for u in sorted(users, key=lambda u: u["email"].lower()):
    perms = "everything" if u["role"] == "admin" else ", ".join(f"{k} {v}" for k, v in sorted(u["permissions"].items())) or "nothing"
    names = ", ".join(projects.get(p, p) for p in u["projects"]) or "-"
    print(f"{u['email']:26} {u['role']:7} {u['status']:8} {names:22} {perms}")
PY
}

step "The account before idsync's first run"
show_users

step "idsync plan: what idsync would change in the live account"
"$idsync" --config "$work/idsync.yaml" plan || true

step "idsync apply: invites, updates and removals, each recorded in the outbox and the audit log"
"$idsync" --config "$work/idsync.yaml" apply

step "The account after the run"
show_users

step "idsync apply again: nothing left to change"
"$idsync" --config "$work/idsync.yaml" apply

step "idsync status and idsync audit"
"$idsync" --config "$work/idsync.yaml" status
"$idsync" --config "$work/idsync.yaml" audit
"$idsync" --config "$work/idsync.yaml" audit verify

step "Done. The emulator is stopped and $work removed."
