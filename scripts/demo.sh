#!/usr/bin/env bash
# The demo: what every person in examples/ gets, and why; then the plan
# against an example account state. Changes nothing anywhere.
set -euo pipefail
cd "$(dirname "$0")/.."
idsync=${IDSYNC_BUILD_DIR:-build}/daemon/idsync
config=examples/idsync.yaml

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

step "idsync validate: the example configuration ($config)"
"$idsync" --config "$config" validate

step "idsync explain --all: the access every person gets from the example directory"
"$idsync" --config "$config" explain --all

step "idsync explain chen@corp.example --json: one person, for scripts"
"$idsync" --config "$config" explain chen@corp.example --json

step "idsync plan: what would change in the account (examples/account-state.json)"
set +e
"$idsync" --config "$config" plan --account-state examples/account-state.json
status=$?
set -e
echo
echo "plan exited with status $status (0: nothing failed; 3: blocked by a safety limit)"
