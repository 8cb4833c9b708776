#!/usr/bin/env bash
# The demo. Part 1, offline: what every person in examples/ gets and why, and
# the plan against an example account state. Part 2, live: a throwaway OpenLDAP
# server (slapd) loaded with the example company, the account emulator (a
# local stand-in for the account's API), `idsync plan` and `idsync apply` into
# it, the account's users afterwards. Part 3, the daemon: idsyncd with an LDAP
# source and a SCIM source; an Okta-style SCIM push (a new user, then a group
# membership) reaches the account within a second or so.
#
# Part 4, review: the web console's overview, fetched as a signed-in browser
# would, and the access-review report written as one HTML file.
#
# Everything it starts is stopped on exit or Ctrl-C; everything it writes is in
# a temporary folder. Only 127.0.0.1 is used, on free ports.
# IDSYNC_BUILD_DIR picks the build (default: build); IDSYNC_DEMO_OFFLINE=0
# skips part 1. `scripts/demo.sh --keep` leaves idsyncd, slapd and the
# emulator running at the end, so that a person can open the console, until
# Ctrl-C.
set -euo pipefail
keep=0
case "${1:-}" in
  --keep) keep=1 ;;
  "") ;;
  *) echo "usage: scripts/demo.sh [--keep]" >&2; exit 2 ;;
esac
cd "$(dirname "$0")/.."
build=${IDSYNC_BUILD_DIR:-build}
idsync=$build/daemon/idsync
idsyncd=$build/daemon/idsyncd
emulator=$build/tools/account-emulator/account-emulator
config=examples/idsync.yaml

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
note() { printf '    %s\n' "$*"; }
die() { printf '\ndemo: %s\n' "$*" >&2; exit 1; }

for b in "$idsync" "$idsyncd" "$emulator"; do
  [ -x "$b" ] || die "$b is missing: build first (bash scripts/build.sh)"
done
for t in slapd slapadd ldapsearch curl jq python3; do
  command -v "$t" >/dev/null || [ -x "/usr/sbin/$t" ] ||
    die "$t is missing: run bash scripts/install-deps.sh"
done

if [ "${IDSYNC_DEMO_OFFLINE:-1}" != 0 ]; then
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
fi

work=$(mktemp -d /tmp/idsync-demo.XXXXXX)
chmod 755 "$work"
pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}
wait_for() {  # wait_for SECONDS PID COMMAND...: until COMMAND succeeds, while PID lives
  local deadline=$((SECONDS + $1)) pid=$2
  shift 2
  until "$@" >/dev/null 2>&1; do
    kill -0 "$pid" 2>/dev/null || return 1
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.1
  done
}

# ---------------------------------------------------------------- slapd
step "Starting a throwaway OpenLDAP server with the example company (examples/directory.ldif)"
mkdir -p "$work/slapd/data"
chmod 700 "$work/slapd/data"
ldap_port=$(free_port)
cat >"$work/slapd/slapd.conf" <<CONF
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload syncprov
pidfile $work/slapd/slapd.pid
argsfile $work/slapd/slapd.args
loglevel none
database mdb
suffix "dc=corp,dc=example"
rootdn "cn=admin,dc=corp,dc=example"
rootpw demo-admin-password
directory $work/slapd/data
maxsize 104857600
dbnosync
index objectClass eq
index uid,cn,mail eq
index member eq
index entryCSN,entryUUID eq
sizelimit unlimited
access to attrs=userPassword by self write by anonymous auth by * none
access to * by * read
overlay syncprov
syncprov-checkpoint 100 10
syncprov-sessionlog 10000
CONF
# slapadd wants entries only: drop the export's comments and version line.
grep -v -e '^#' -e '^version:' examples/directory.ldif | sed '/./,$!d' >"$work/slapd/directory.ldif"
/usr/sbin/slapadd -q -w -f "$work/slapd/slapd.conf" -b dc=corp,dc=example \
  -l "$work/slapd/directory.ldif" >"$work/slapd/slapadd.log" 2>&1 ||
  { cat "$work/slapd/slapadd.log"; die "slapadd failed"; }
(ulimit -n 4096; exec /usr/sbin/slapd -f "$work/slapd/slapd.conf" -d none \
  -h "ldap://127.0.0.1:$ldap_port/" </dev/null >"$work/slapd/slapd.log" 2>&1) &
pids+=($!)
slapd_pid=$!
wait_for 30 "$slapd_pid" ldapsearch -x -H "ldap://127.0.0.1:$ldap_port" -s base -b "" namingContexts ||
  { cat "$work/slapd/slapd.log"; die "slapd did not start"; }
people=$(ldapsearch -x -LLL -H "ldap://127.0.0.1:$ldap_port" -b ou=people,dc=corp,dc=example \
  '(objectClass=inetOrgPerson)' dn | grep -c '^dn:')
groups=$(ldapsearch -x -LLL -H "ldap://127.0.0.1:$ldap_port" -b ou=groups,dc=corp,dc=example \
  '(objectClass=groupOfNames)' dn | grep -c '^dn:')
note "slapd listening on ldap://127.0.0.1:$ldap_port: $people people, $groups groups"

# ---------------------------------------------------------------- emulator
step "Starting the account emulator (a local stand-in for the account's API)"
export IDSYNC_DEMO_TOKEN=demo-token-$RANDOM$RANDOM
"$emulator" --listen 127.0.0.1:0 --token "$IDSYNC_DEMO_TOKEN" --seed examples/account-seed.json \
  --port-file "$work/port" >"$work/emulator.log" 2>&1 &
pids+=($!)
emulator_pid=$!
wait_for 10 "$emulator_pid" test -s "$work/port" || true
[ -s "$work/port" ] || { cat "$work/emulator.log"; die "the emulator did not start"; }
port=$(cat "$work/port")
note "listening on 127.0.0.1:$port; seeded with the owner, bruno (outdated access) and a vendor"

# ---------------------------------------------------------------- tokens
# SCIM and admin tokens: idsync keeps only their SHA-256 hashes.
new_token() {  # prints "TOKEN HASH"
  local out token hash
  if out=$("$idsync" scim-token new 2>/dev/null); then
    token=$(printf '%s\n' "$out" | grep -oE '[A-Za-z0-9_-]{32,}' | head -1)
    hash=$(printf '%s\n' "$out" | grep -oE 'sha256:[0-9a-f]{64}' | head -1)
    if [ -n "$token" ] && [ -n "$hash" ]; then echo "$token $hash"; return; fi
  fi
  token=$(head -c 32 /dev/urandom | base64 | tr -d '/+=\n')
  echo "$token sha256:$(printf '%s' "$token" | sha256sum | cut -d' ' -f1)"
}
read -r scim_token scim_hash < <(new_token)
read -r admin_token admin_hash < <(new_token)
scim_port=$(free_port)
admin_port=$(free_port)

cat >"$work/idsync.yaml" <<CONF
# The demo's configuration: the example company's rules, read from the
# throwaway slapd, plus a SCIM source that Okta or Entra ID would push to.
account:
  url: http://127.0.0.1:$port
  token: \${env:IDSYNC_DEMO_TOKEN}
store: sqlite://$work/state.db

sources:
  - name: corp-ldap
    type: ldap
    url: ldap://127.0.0.1:$ldap_port
    flavor: openldap
    users:
      base: "ou=people,dc=corp,dc=example"
      filter: "(objectClass=inetOrgPerson)"
      email: mail
      name: cn
      disabled_filter: "(employeeType=former)"
    groups:
      base: "ou=groups,dc=corp,dc=example"
      filter: "(objectClass=groupOfNames)"
      name: cn
      member: member
      nested: true
      max_depth: 8
    interval: 15m
    watch: ${IDSYNC_DEMO_WATCH:-false}
    watch_interval: 5s
  - name: contractors
    type: ldif
    path: $PWD/examples/contractors.ldif
    users: {base: "ou=contractors,dc=partners,dc=example", filter: "(objectClass=inetOrgPerson)", email: mail, name: displayName}
    groups: {base: "ou=teams,dc=partners,dc=example", filter: "(objectClass=groupOfNames)", name: cn, member: member}
  - name: okta
    type: scim
    tokens: ["$scim_hash"]

server:
  listen: ["127.0.0.1:$scim_port"]
  admin_listen: ["127.0.0.1:$admin_port"]
  admin_tokens: ["$admin_hash"]

permissions:
  catalog: account
  presets:
    support-lead: {analytics: edit, build: read, build.knowledge: edit, channels: read}

rules:
  - name: studio-admins
    match: {group: "CN=Studio Admins, OU=Groups, DC=corp, DC=example"}
    role: admin
  - name: qa
    match: {group: "qa-*", source: corp-ldap}
    preset: qa-analyst
    projects: [support-bot]
  - name: voice
    match: {group: "Voice Team"}
    presets: [voice-specialist]
    permissions: {configure.numbers: edit}
    projects: [support-bot, sales-bot]
  - name: knowledge
    match: {group: "Knowledge Writers"}
    preset: content-editor
    permissions: {build.tools: none}
    projects: [support-bot]
  - name: support-leads
    match: {group: "Support Leads"}
    preset: support-lead
    projects: [support-bot]

deprovision: remove
adopt_existing: true
protect: [owner@corp.example]

safety:
  max_removals: 5
  max_changes: 100

logging: {format: text, level: info}
CONF

api() {  # api PATH: GET from the account emulator
  curl -sf -H "Authorization: Bearer $IDSYNC_DEMO_TOKEN" "http://127.0.0.1:$port$1"
}
all_users() {
  local cursor="" page
  while :; do
    page=$(api "/users?limit=1000${cursor:+&cursor=$cursor}")
    printf '%s\n' "$page" | jq -c '.users[]'
    cursor=$(printf '%s\n' "$page" | jq -r '.next_cursor // empty')
    [ -n "$cursor" ] || break
  done
}
show_users() {
  local projects
  projects=$(api /projects | jq -c '[.projects[] | {(.id): .name}] | add')
  all_users | jq -rs --argjson p "$projects" '
    sort_by(.email | ascii_downcase)[]
    | [ .email, .role, .status,
        ((.projects | map($p[.] // .) | join(", ")) | if . == "" then "-" else . end),
        (if .role == "admin" then "everything"
         else (.permissions | to_entries | map("\(.key) \(.value)") | join(", "))
              | if . == "" then "nothing" else . end end) ]
    | @tsv' |
    awk -F'\t' 'BEGIN { printf "    %-26s %-7s %-8s %-22s %s\n", "e-mail", "role", "status", "projects", "permissions" }
                { printf "    %-26s %-7s %-8s %-22s %s\n", $1, $2, $3, $4, $5 }'
}

step "idsync validate: the demo configuration (LDAP, LDIF and SCIM sources)"
"$idsync" --config "$work/idsync.yaml" validate

step "The account before idsync's first run"
show_users

step "idsync plan: what idsync would change in the live account (nothing is sent)"
"$idsync" --config "$work/idsync.yaml" plan || true

step "idsync apply: invites, updates and removals, each recorded in the outbox and the audit log"
"$idsync" --config "$work/idsync.yaml" apply

step "The account after the run"
show_users

# ---------------------------------------------------------------- idsyncd
step "Starting idsyncd: SCIM on 127.0.0.1:$scim_port/scim/v2, admin on 127.0.0.1:$admin_port"
"$idsyncd" --config "$work/idsync.yaml" >"$work/idsyncd.log" 2>&1 &
pids+=($!)
idsyncd_pid=$!
wait_for 30 "$idsyncd_pid" curl -sf "http://127.0.0.1:$admin_port/readyz" ||
  { tail -20 "$work/idsyncd.log"; die "idsyncd did not become ready"; }
note "ready: GET /readyz -> $(curl -s "http://127.0.0.1:$admin_port/readyz")"
note "GET /v1/status (admin token):"
curl -sf -H "Authorization: Bearer $admin_token" "http://127.0.0.1:$admin_port/v1/status" |
  jq -c '{runs: (.runs // .last_runs // null | if type == "array" then length else . end), sources: (.sources // null)}' |
  sed 's/^/    /' || note "(no status)"

scim() {  # scim METHOD PATH [BODY]
  curl -sf -X "$1" -H "Authorization: Bearer $scim_token" \
    -H 'Content-Type: application/scim+json' -H 'Accept: application/scim+json' \
    "http://127.0.0.1:$scim_port/scim/v2$2" ${3:+--data "$3"}
}
maya_in_account() { all_users | jq -e 'select(.email == "maya@corp.example")' >/dev/null; }

step "Okta pushes a group: POST /scim/v2/Groups {displayName: \"Voice Team\"}"
group_id=$(scim POST /Groups '{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],
  "displayName":"Voice Team","members":[]}' | jq -r .id) || die "SCIM POST /Groups failed"
note "created group $group_id"

step "Okta assigns a new person: POST /scim/v2/Users (maya@corp.example)"
user_id=$(scim POST /Users '{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],
  "userName":"maya@corp.example","name":{"givenName":"Maya","familyName":"Ito"},
  "displayName":"Maya Ito","emails":[{"value":"maya@corp.example","type":"work","primary":true}],
  "active":true}' | jq -r .id) || die "SCIM POST /Users failed"
note "created user $user_id; in no group yet, so no access:"
sleep 1
if maya_in_account; then note "maya is in the account (unexpected)"; else note "maya is not in the account"; fi

step "Okta adds her to Voice Team: PATCH /scim/v2/Groups/$group_id (add members)"
start_ms=$(date +%s%3N)
scim PATCH "/Groups/$group_id" "{\"schemas\":[\"urn:ietf:params:scim:api:messages:2.0:PatchOp\"],
  \"Operations\":[{\"op\":\"add\",\"path\":\"members\",\"value\":[{\"value\":\"$user_id\",\"display\":\"maya@corp.example\"}]}]}" \
  >/dev/null || die "SCIM PATCH /Groups failed"
reached=""
for _ in $(seq 100); do
  if maya_in_account; then reached=$(($(date +%s%3N) - start_ms)); break; fi
  sleep 0.05
done
if [ -n "$reached" ]; then
  note "the change reached the account in ${reached} ms:"
  all_users | jq -r 'select(.email == "maya@corp.example")
    | "    \(.email) \(.role) \(.status) permissions: \(.permissions | to_entries | map("\(.key) \(.value)") | join(", "))"'
  echo "DEMO: SCIM change reached the account"
else
  tail -20 "$work/idsyncd.log"
  die "the SCIM change did not reach the account within 5 seconds"
fi

step "idsync explain maya@corp.example: which group, from which source, which rule"
"$idsync" --config "$work/idsync.yaml" explain maya@corp.example || true

step "A few of idsyncd's metrics (GET /metrics)"
curl -sf "http://127.0.0.1:$admin_port/metrics" | grep -E '^idsync_(runs|operations|scim_requests)_total' |
  head -8 | sed 's/^/    /' || note "(none yet)"

step "idsync status and idsync audit verify"
"$idsync" --config "$work/idsync.yaml" status || true
"$idsync" --config "$work/idsync.yaml" audit verify

# ---------------------------------------------------------------- review
console="http://127.0.0.1:$admin_port/ui"
step "The web console ($console/): sign in with the admin token, fetch the overview"
curl -sf -c "$work/cookies" -H 'Content-Type: application/json' \
  -d "{\"token\": \"$admin_token\"}" "$console/api/session" >/dev/null ||
  die "the console refused the admin token"
curl -sf -b "$work/cookies" "$console/api/overview" |
  jq '{sources: [.sources[] | {name, state, users, groups}],
       runs: [.runs[:3][] | {id, kind, result}],
       pending: (.pending | length), failed: (.failed | length), audit}'
echo "DEMO: console overview fetched"

step "The access-review report: everyone with access, each level with its rule and group"
"$idsync" --config "$work/idsync.yaml" report --format html --out "$work/access-review.html"
curl -sf -b "$work/cookies" -o "$work/access-review-console.html" "$console/api/report.html"
note "$work/access-review.html: $(wc -c <"$work/access-review.html") bytes, one self-contained file"
note "(the console's download is the same report: $(wc -c <"$work/access-review-console.html") bytes)"
note "as CSV (idsync report):"
"$idsync" --config "$work/idsync.yaml" report --out "$work/access-review.csv"
head -6 "$work/access-review.csv" | cut -c1-110 | sed 's/^/    /'
echo "DEMO: access review written"

if [ "$keep" = 1 ]; then
  step "Everything keeps running: open $console/ and sign in with the admin token"
  note "admin token: $admin_token"
  note "the access review: $work/access-review.html"
  note "Ctrl-C stops idsyncd, slapd and the emulator and removes $work"
  wait "$idsyncd_pid" || true
fi

step "Stopping idsyncd (SIGTERM)"
kill -TERM "$idsyncd_pid"
wait "$idsyncd_pid" && note "idsyncd exited with status 0" || note "idsyncd exited with status $?"

step "Done. slapd and the emulator are stopped and $work removed."
echo "DEMO: done"
