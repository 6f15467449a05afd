#!/usr/bin/env bash
# The whole test suite: unit tests (ctest) then end-to-end tests against a real server.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
export RHIP_BIN="$PWD/$BUILD/rhip"
ctest --test-dir "$BUILD" --output-on-failure -j "$(nproc)" --timeout 600
