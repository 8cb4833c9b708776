#!/usr/bin/env bash
# CI's fuzzing step: builds every fuzz target with clang 14 (ASan, UBSan,
# libFuzzer) and runs each for a short fixed time from its committed corpus,
# two at a time, under the limits of the long runs: -rss_limit_mb=2048,
# -timeout=1, leak detection on. Any crash, leak, timeout, out-of-memory or
# sanitizer report fails the step, and the input that caused it is printed
# in base64 so that it can be kept in fuzz/regressions/<name>/.
#
#   bash fuzz/ci.sh [SECONDS]        (default 20)
#
# The targets are built in $IDSYNC_FUZZ_BUILD_DIR when it is set: a tree
# configured already with -DIDSYNC_FUZZ=ON (CI's sanitizer build is, so only
# the targets themselves are left to build); else in build-fuzz-ci,
# configured here.
set -euo pipefail
seconds=${1:-20}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

started=$(date +%s)
names=()
for source in fuzz/*_fuzzer.cc; do
  name=$(basename "$source" _fuzzer.cc)
  names+=("$name")
done

if [[ -n ${IDSYNC_FUZZ_BUILD_DIR:-} ]]; then
  build=$IDSYNC_FUZZ_BUILD_DIR
  grep -q '^IDSYNC_FUZZ:BOOL=ON' "$build/CMakeCache.txt" ||
    { echo "fuzz/ci.sh: $build is not configured with -DIDSYNC_FUZZ=ON" >&2; exit 2; }
else
  build=$root/build-fuzz-ci
  # -O1 with line tables: quicker to build than the long runs'
  # RelWithDebInfo, and the reports still name lines.
  CC=clang-14 CXX=clang++-14 cmake -S . -B "$build" -G Ninja -DIDSYNC_FUZZ=ON \
    -DIDSYNC_BUILD_TESTS=OFF -DIDSYNC_BUILD_BENCH=OFF -DCMAKE_BUILD_TYPE=Debug \
    -DCMAKE_CXX_FLAGS_DEBUG="-O1 -gline-tables-only" >/dev/null
fi
targets=()
for name in "${names[@]}"; do targets+=("fuzz/${name}_fuzzer"); done
ninja -C "$build" "${targets[@]}" | tail -1
built=$(date +%s)
echo "==> fuzz: ${#names[@]} targets built in $((built - started)) s; ${seconds} s each, two at a time"

work=$(mktemp -d /tmp/idsync-fuzz-ci.XXXXXX)
trap 'rm -rf "$work"' EXIT

# Runs one target; its verdict goes to $work/<name>.status.
run_one() {
  local name=$1
  local dir=$work/$name
  mkdir -p "$dir/corpus" "$dir/findings"
  cp "$root/fuzz/corpus/$name/"* "$dir/corpus/"
  local dict=()
  [[ -f $root/fuzz/dict/$name.dict ]] && dict=(-dict="$root/fuzz/dict/$name.dict")
  local status=0
  ASAN_OPTIONS=detect_leaks=1 "$build/fuzz/${name}_fuzzer" "$dir/corpus" "${dict[@]}" \
    -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=1 -detect_leaks=1 \
    -artifact_prefix="$dir/findings/" -print_final_stats=1 >"$dir/log" 2>&1 || status=$?
  echo "$status" >"$work/$name.status"
}

running=0
for name in "${names[@]}"; do
  run_one "$name" &
  running=$((running + 1))
  if ((running >= 2)); then
    wait -n || true
    running=$((running - 1))
  fi
done
wait || true

failed=0
for name in "${names[@]}"; do
  dir=$work/$name
  status=$(cat "$work/$name.status" 2>/dev/null || echo 99)
  executions=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/log")
  edges=$(grep -E '^#[0-9]+' "$dir/log" | tail -1 | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
  peak=$(sed -n 's/^stat::peak_rss_mb: *//p' "$dir/log")
  if [[ $status == 0 ]] && [[ -z $(ls -A "$dir/findings") ]]; then
    printf '    %-14s ok: %s executions, %s edges, %s MB\n' "$name" "${executions:-?}" "${edges:-?}" "${peak:-?}"
    continue
  fi
  failed=1
  echo "    $name FAILED (exit $status); the end of its log:"
  grep -v '^#[0-9]' "$dir/log" | tail -60 | sed 's/^/      /'
  for finding in "$dir/findings/"*; do
    [[ -f $finding ]] || continue
    echo "      input $(basename "$finding") (base64; keep it as fuzz/regressions/$name/<what-it-was>):"
    base64 -w 100 "$finding" | sed 's/^/        /'
  done
done
echo "==> fuzz: done in $(($(date +%s) - started)) s"
exit "$failed"
