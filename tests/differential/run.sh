#!/bin/sh
# Differential SCIM tests: idsync's endpoint against scim-patch (PATCH) and
# scim2-parse-filter (filters), over HTTP against a fresh scim_test_server.
#
#   run.sh SCIM_TEST_SERVER [patch|filter|all]
#
# Environment:
#   IDSYNC_DIFF_SEED   fixed seed (reproduces a run); chosen at random when unset
#   IDSYNC_DIFF_CASES  generated cases per suite (default 10000)
#   IDSYNC_DIFF_ONLY   run only this case index (with the seed that printed it)
#   IDSYNC_DIFF_DOC    the compatibility document (default docs/scim-compatibility.md)
#
# Each suite gets its own server (empty SQLite store in a temporary directory,
# port 0, random token). Exit status: 0 when every disagreement is explained;
# 1 when one is not (or a server does not start); 2 for usage or a missing tool.
set -eu

server_bin=${1:?usage: run.sh SCIM_TEST_SERVER [patch|filter|all]}
which=${2:-all}
here=$(cd "$(dirname "$0")" && pwd)

case "$which" in
  patch|filter) suites=$which ;;
  all) suites="patch filter" ;;
  *) echo "usage: run.sh SCIM_TEST_SERVER [patch|filter|all]" >&2; exit 2 ;;
esac

if ! command -v node >/dev/null 2>&1; then
  echo "run.sh: node is not installed (scripts/install-deps.sh installs it)" >&2
  exit 2
fi
if [ ! -f "$here/node_modules/scim-patch/package.json" ] ||
   [ ! -f "$here/node_modules/scim2-parse-filter/package.json" ]; then
  echo "run.sh: $here/node_modules is missing: run scripts/install-deps.sh" >&2
  echo "        (it runs 'npm ci --prefix tests/differential')" >&2
  exit 2
fi
if [ ! -x "$server_bin" ]; then
  echo "run.sh: $server_bin is not an executable" >&2
  exit 2
fi

if [ -z "${IDSYNC_DIFF_SEED:-}" ]; then
  IDSYNC_DIFF_SEED=$(od -An -N4 -tu4 /dev/urandom | tr -d ' \n')
  IDSYNC_DIFF_SEED=$((IDSYNC_DIFF_SEED % 2147483647))
fi
export IDSYNC_DIFF_SEED
export IDSYNC_DIFF_CASES="${IDSYNC_DIFF_CASES:-10000}"

work=$(mktemp -d "${TMPDIR:-/tmp}/idsync-diff-XXXXXX")
server_pid=
stop_server() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=
  fi
}
cleanup() {
  stop_server
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

status=0
for suite in $suites; do
  dir="$work/$suite"
  mkdir -p "$dir/store"
  # A fresh random token per run; the server learns only its hash.
  token=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')
  "$server_bin" --port-file "$dir/port" --token "$token" --source entra \
    --store-dir "$dir/store" 2>"$dir/server.log" &
  server_pid=$!
  i=0
  while [ ! -s "$dir/port" ]; do
    i=$((i + 1))
    if [ $i -gt 100 ] || ! kill -0 "$server_pid" 2>/dev/null; then
      echo "run.sh: scim_test_server did not start:" >&2
      cat "$dir/server.log" >&2
      exit 1
    fi
    sleep 0.1
  done
  port=$(cat "$dir/port")
  suite_status=0
  IDSYNC_DIFF_URL="http://127.0.0.1:$port/scim/v2" IDSYNC_DIFF_TOKEN="$token" \
    node "$here/${suite}_diff.js" || suite_status=$?
  stop_server
  if [ "$suite_status" -ne 0 ]; then
    echo "run.sh: $suite suite failed (exit $suite_status); server log:" >&2
    tail -n 20 "$dir/server.log" >&2
    [ "$status" -eq 0 ] && status=$suite_status
  fi
done
exit $status
