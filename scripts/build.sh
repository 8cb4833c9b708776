#!/usr/bin/env bash
# Configures and builds idsync in ./build (Release with debug info, -Werror).
# Extra CMake arguments are passed through, e.g. -DIDSYNC_SANITIZE=ON.
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${IDSYNC_BUILD_DIR:-build}
cmake -S . -B "$build_dir" -G Ninja "$@" >/dev/null
cmake --build "$build_dir" -j"$(nproc)"
