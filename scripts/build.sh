#!/usr/bin/env bash
# Configures and builds idsync in ./build (or $IDSYNC_BUILD_DIR): the default
# RelWithDebInfo build type, with -Werror (-DIDSYNC_WERROR=ON; a plain cmake
# build only warns). Extra CMake arguments are passed through and come last, so
# they win, e.g. -DIDSYNC_SANITIZE=ON or -DCMAKE_BUILD_TYPE=Release. The
# compiler is CMake's choice, or $CXX (CXX=clang++-14).
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${IDSYNC_BUILD_DIR:-build}
cmake -S . -B "$build_dir" -G Ninja -DIDSYNC_WERROR=ON "$@" >/dev/null
cmake --build "$build_dir" -j"$(nproc)"
