#!/bin/sh
# Runs Microsoft's SCIM Postman collection with newman against a fresh
# scim_test_server on loopback (empty SQLite store, port 0).
#
#   run_newman.sh SCIM_TEST_SERVER COLLECTION [REPORT_DIR]
#
# Exit status: newman's (0 when every assertion passed); 1 when the server
# does not come up; 2 for usage or a missing tool.
set -eu

server_bin=${1:?usage: run_newman.sh SCIM_TEST_SERVER COLLECTION [REPORT_DIR]}
collection=${2:?usage: run_newman.sh SCIM_TEST_SERVER COLLECTION [REPORT_DIR]}
report_dir=${3:-}

for tool in newman jq; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "run_newman.sh: $tool is not installed (scripts/install-deps.sh installs it)" >&2
    exit 2
  fi
done

work=$(mktemp -d "${TMPDIR:-/tmp}/idsync-newman-XXXXXX")
server_pid=
cleanup() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

# A fresh random token per run; the server learns only its hash.
token=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')

mkdir "$work/store"
"$server_bin" --port-file "$work/port" --token "$token" --source entra \
  --store-dir "$work/store" 2>"$work/server.log" &
server_pid=$!

i=0
while [ ! -s "$work/port" ]; do
  i=$((i + 1))
  if [ $i -gt 100 ] || ! kill -0 "$server_pid" 2>/dev/null; then
    echo "run_newman.sh: scim_test_server did not start:" >&2
    cat "$work/server.log" >&2
    exit 1
  fi
  sleep 0.1
done
port=$(cat "$work/port")

# "Get Token" calls the reference server's own token endpoint: not ours.
jq 'del(.item[] | select(.name == "Get Token"))' "$collection" >"$work/collection.json"

set -- --env-var Protocol=http --env-var Server=127.0.0.1 --env-var "Port=:$port" \
  --env-var Api=scim/v2 --env-var "token=$token" --reporters cli --color off \
  --disable-unicode --timeout-request 30000
if [ -n "$report_dir" ]; then
  mkdir -p "$report_dir"
  set -- "$@" --reporters cli,json --reporter-json-export "$report_dir/newman-report.json"
fi

status=0
newman run "$work/collection.json" "$@" || status=$?
exit $status
