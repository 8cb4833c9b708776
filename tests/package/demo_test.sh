#!/usr/bin/env bash
# Runs scripts/demo.sh against this build to its end (ctest: demo) and checks
# its output for the lines that show each part worked.
#
#   demo_test.sh SOURCE_DIR BUILD_DIR
set -uo pipefail
src=${1:?usage: demo_test.sh SOURCE_DIR BUILD_DIR}
build=$(cd "${2:?build dir}" && pwd)
out=$(mktemp /tmp/idsync-demo-test.XXXXXX)
trap 'rm -f "$out"' EXIT

IDSYNC_BUILD_DIR=$build bash "$src/scripts/demo.sh" >"$out" 2>&1
rc=$?
cat "$out"
fail=0
bad() { echo "FAIL: $*"; fail=1; }
[ "$rc" = 0 ] || bad "scripts/demo.sh exited $rc"

expect() {  # expect REGEX WHAT
  grep -Eq -- "$1" "$out" || bad "the demo did not show $2 (no line matching /$1/)"
}
expect 'configuration is valid' "the offline validation"
expect '^chen@corp\.example' "explain --all"
expect 'slapd listening on ldap://127\.0\.0\.1:[0-9]+: [1-9][0-9]* people' "slapd with the example company"
expect '^Applied [1-9][0-9]* operations .*: 0 failed' "a successful apply"
expect '^ +ana@corp\.example +admin +invited' "ana invited as admin after the apply"
expect 'ready: GET /readyz -> .*"ready": *true' "idsyncd ready"
expect 'created user [0-9a-f-]+' "the SCIM POST /Users"
expect 'maya is not in the account' "that the SCIM user had no access before the group change"
expect 'the change reached the account in [0-9]+ ms' "the SCIM change reaching the account"
expect '^ +maya@corp\.example member invited permissions: .*channels\.voice edit' "maya's access from the voice rule"
expect '^audit log intact' "audit verify"
expect '^DEMO: console overview fetched' "the console's overview"
expect '"name": "corp-ldap"' "the LDAP source in the console's overview"
expect 'access-review\.html: [0-9]+ bytes' "the HTML access review"
expect '^ +bruno@corp\.example,Bruno Costa,member,support-bot' "bruno in the CSV access review"
expect 'idsyncd exited with status 0' "a clean SIGTERM stop"
expect '^DEMO: done' "the end of the demo"
if grep -q 'Aborted\|terminate called' "$out"; then bad "a process crashed during the demo"; fi

if [ "$fail" = 0 ]; then echo "PASS"; else echo "FAILED"; fi
exit "$fail"
