#!/usr/bin/env bash
# A long run of one fuzz target, for the table in fuzz/README.md.
#
#   bash fuzz/long_run.sh NAME [RUNS] [SECONDS] [BUILD_DIR]
#
# Runs build-fuzz/fuzz/NAME_fuzzer from a copy of fuzz/corpus/NAME (and the
# target's dictionary, when there is one) until RUNS executions (default 10
# million) or SECONDS (default 3600), whichever comes first, under the limits
# CI uses. Then it replays every input of the grown corpus one by one to find
# the slowest, and prints one line of the README's table. The grown corpus is
# left in /tmp/idsync-fuzz-long/NAME; findings go to /tmp/idsync-fuzz-long/NAME-findings.
set -euo pipefail
name=${1:?usage: long_run.sh NAME [RUNS] [SECONDS] [BUILD_DIR]}
runs=${2:-10000000}
seconds=${3:-3600}
root=$(cd "$(dirname "$0")/.." && pwd)
build=${4:-$root/build-fuzz}
fuzzer=$build/fuzz/${name}_fuzzer
[[ -x $fuzzer ]] || { echo "long_run: $fuzzer is not built" >&2; exit 2; }

work=/tmp/idsync-fuzz-long
corpus=$work/$name
findings=$work/$name-findings
log=$work/$name.log
rm -rf "$corpus" "$findings"
mkdir -p "$corpus" "$findings"
cp "$root/fuzz/corpus/$name/"* "$corpus/"
dict=()
[[ -f $root/fuzz/dict/$name.dict ]] && dict=(-dict="$root/fuzz/dict/$name.dict")

started=$(date +%s)
set +e
(cd "$findings" && ASAN_OPTIONS=detect_leaks=1 "$fuzzer" "$corpus" "${dict[@]}" \
  -runs="$runs" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=1 \
  -print_final_stats=1 -print_pcs=0 >"$log" 2>&1)
status=$?
set -e
elapsed=$(($(date +%s) - started))
if ((status != 0)); then
  echo "long_run: $name failed (exit $status); see $log and $findings" >&2
  tail -40 "$log" >&2
  exit 1
fi

stat() { sed -n "s/^stat::$1: *//p" "$log"; }
executions=$(stat number_of_executed_units)
peak=$(stat peak_rss_mb)
edges=$(grep -E '^#[0-9]+' "$log" | tail -1 | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
# The corpus libFuzzer kept in memory; the directory also holds the inputs
# it later replaced with smaller ones.
kept=$(grep -E '^#[0-9]+' "$log" | tail -1 | sed -n 's/.* corp: \([0-9]*\)\/.*/\1/p')

# The slowest input of the grown corpus, each run alone (libFuzzer prints
# "Executed FILE in N ms" when given files).
slowest=$(cd "$findings" && find "$corpus" -type f -print0 |
  xargs -0 -n 500 "$fuzzer" -rss_limit_mb=2048 -timeout=1 2>&1 |
  sed -n 's/^Executed .* in \([0-9]*\) ms$/\1/p' | sort -n | tail -1)
printf '| `%s` | %s | %s s | %s | %s MB | %s ms | %s |\n' \
  "$name" "$executions" "$elapsed" "$edges" "$peak" "${slowest:-?}" "${kept:-?}"
