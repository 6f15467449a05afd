#!/usr/bin/env bash
# Bulk import (issue 4): `rhip import` of a generated region's NDJSON against a
# plain SQLite insert of the same rows in the same run (one row per resource
# with its (type, id) key: BM_RawSqliteInsertNdjson). The ratio is what our
# versions, validation and search index cost.
#
#   bash bench/import.sh                         # rhip gen 10,000 residents x 3 years (~1.1 M resources)
#   RESIDENTS=2000 bash bench/import.sh          # quick look
set -euo pipefail
cd "$(dirname "$0")/.."
RHIP=${RHIP:-build/rhip}
RESIDENTS=${RESIDENTS:-10000}
WORK=${WORK:-/tmp/rhip-bench-import-$RESIDENTS}
if [ ! -d "$WORK/region/fhir" ]; then
  rm -rf "$WORK"
  "$RHIP" gen --residents "$RESIDENTS" --years 3 --seed 3 --out "$WORK/region" >/dev/null
fi
echo "input: $(cat "$WORK"/region/fhir/*.ndjson | wc -l) resources, $(du -sh "$WORK/region/fhir" | cut -f1)"
RHIP_BENCH_NDJSON="$WORK/region/fhir" build/src/rhip_store_benchmark --benchmark_filter=RawSqliteInsertNdjson 2>/dev/null |
  grep -E '^BM_' | sed -E 's/.*items_per_second=([0-9.]+[kM]?).*/baseline (plain SQLite insert of the same rows): \1 rows\/s/'
rm -rf "$WORK/data"
/usr/bin/time -f "rhip import: %e s wall, %U s user, %S s sys, %M KB peak RSS" \
  "$RHIP" import --data "$WORK/data" "$WORK/region/fhir" 2>&1 | tr '\r' '\n' | grep -E 'imported|peak'
echo "store size: $(du -sh "$WORK/data" | cut -f1)"
