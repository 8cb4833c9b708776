#!/usr/bin/env bash
# Nested groups on Active Directory (a Samba AD DC started by the test
# fixture): a full read plus idsync's client-side closure against a full read
# plus one in-chain search (1.2.840.113556.1.4.1941) per group.
#
# Usage: bench/ad_nesting_bench.sh [BUILD_DIR]  (default: build)
# Sizes: IDSYNC_AD_BENCH_USERS (400), IDSYNC_AD_BENCH_GROUPS (100),
#        IDSYNC_AD_BENCH_DEPTH (5, groups per nesting chain), IDSYNC_AD_BENCH_ROUNDS (3).
# Samba adds about 10-40 entries a second, so loading dominates the run time.
# Needs root-free ports 389/636 (one Samba DC at a time) and samba, samba-ad-dc,
# samba-ad-provision, ldap-utils.
set -euo pipefail
build=${1:-build}
test_binary="$build/tests/connectors/ldap_ad/ldap_ad_in_chain_test"
if [[ ! -x $test_binary ]]; then
  echo "build $test_binary first (ninja -C $build ldap_ad_in_chain_test)" >&2
  exit 2
fi
IDSYNC_AD_BENCH=1 "$test_binary" --gtest_filter='InChainTest.BenchmarkAgainstClientSideClosure' |
  grep -E '^ad_nesting_bench|FAILED|Skipped' || true
