#!/usr/bin/env bash
# The whole test suite: unit tests (ctest), then end-to-end tests that drive the
# real binary (node's test runner; third-party clients from npm).
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
export RHIP_BIN="$PWD/$BUILD/rhip"
status=0
ctest --test-dir "$BUILD" --output-on-failure -j "$(nproc)" --timeout 600 || status=1
node --test --test-concurrency=1 tests/e2e/ || status=1
exit $status
