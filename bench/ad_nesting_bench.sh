#!/usr/bin/env bash
# Nested groups on Active Directory (a Samba AD DC started by the test
# fixture): a full read plus idsync's client-side closure against a full read
# plus one in-chain search (1.2.840.113556.1.4.1941) per group. Runs
# InChainTest.BenchmarkAgainstClientSideClosure, which also checks that both
# ways give the same members, and prints its one result line.
#
# Usage: bench/ad_nesting_bench.sh [BUILD_DIR]  (default: build)
# Sizes: IDSYNC_AD_BENCH_USERS (400), IDSYNC_AD_BENCH_GROUPS (100),
#        IDSYNC_AD_BENCH_DEPTH (5, groups per nesting chain), IDSYNC_AD_BENCH_ROUNDS (3).
# Samba adds about 10-40 entries a second, so loading dominates the run time.
# Needs ports 389/636 free (one Samba DC at a time) and samba, samba-ad-dc,
# samba-ad-provision, ldap-utils. Exits non-zero, with the test's output, when
# the test fails, Samba is missing or the result line is not printed.
set -euo pipefail
build=${1:-build}
test_binary="$build/tests/connectors/ldap_ad/ldap_ad_in_chain_test"
test_filter='InChainTest.BenchmarkAgainstClientSideClosure'
if [[ ! -x $test_binary ]]; then
  echo "ad_nesting_bench.sh: build $test_binary first (ninja -C $build ldap_ad_in_chain_test)" >&2
  exit 2
fi
log=$(mktemp /tmp/idsync-ad-bench.XXXXXX)
trap 'rm -f "$log"' EXIT

# IDSYNC_REQUIRE_SERVERS=1: a missing Samba fails the test instead of skipping it.
status=0
IDSYNC_AD_BENCH=1 IDSYNC_REQUIRE_SERVERS=1 "$test_binary" --gtest_filter="$test_filter" \
  >"$log" 2>&1 || status=$?
if [[ $status != 0 ]]; then
  cat "$log" >&2
  echo "ad_nesting_bench.sh: $test_binary --gtest_filter=$test_filter exited $status" >&2
  exit 1
fi
if ! grep -E '^ad_nesting_bench ' "$log"; then
  cat "$log" >&2
  echo "ad_nesting_bench.sh: $test_binary --gtest_filter=$test_filter printed no result line" >&2
  exit 1
fi
