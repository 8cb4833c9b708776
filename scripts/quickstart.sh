#!/usr/bin/env bash
# Quick start, step one: install what is missing, build, run the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
echo "==> building"
bash scripts/build.sh
bash scripts/demo.sh
