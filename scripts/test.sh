#!/usr/bin/env bash
# Quick start, step two: install what is missing, build, run the whole test
# suite. `scripts/test.sh -L unit` runs only the tests that need no servers.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
echo "==> building"
bash scripts/build.sh
echo "==> testing"
cd "${IDSYNC_BUILD_DIR:-build}"
ctest --output-on-failure --timeout 600 -j"$(nproc)" "$@"
