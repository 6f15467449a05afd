#!/usr/bin/env bash
# Bulk Data $export (issue 6): the operator's plain system export against the
# cdc's pseudonymised, de-identified export of the same store, one after the
# other on one server. The plain export copies stored JSON; the de-identified
# one parses each resource, asks the policy, pseudonymises and re-writes it.
# Also checks that no name or phone of the generator's residents is in the
# de-identified files.
#
#   bash bench/export.sh                  # rhip gen 2,000 residents x 3 years
#   RESIDENTS=10000 bash bench/export.sh
set -euo pipefail
cd "$(dirname "$0")/.."
RHIP=${RHIP:-$PWD/build/rhip}
RESIDENTS=${RESIDENTS:-2000}
WORK=${WORK:-/tmp/rhip-bench-export-$RESIDENTS}
if [ ! -d "$WORK/data" ]; then
  rm -rf "$WORK"
  "$RHIP" gen --residents "$RESIDENTS" --years 3 --seed 3 --out "$WORK/region" >/dev/null
  "$RHIP" import --data "$WORK/data" "$WORK/region/fhir" >/dev/null 2>&1
fi
"$RHIP" serve --data "$WORK/data" --port 0 --threads 4 >"$WORK/serve.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 1 600); do grep -qE 'http://[0-9.]+:[0-9]+/fhir' "$WORK/serve.log" && break; sleep 0.1; done
BASE=$(grep -oE 'http://[0-9.]+:[0-9]+/fhir' "$WORK/serve.log" | head -1)
run() {  # run ROLE [QUERY]: kick off, poll, download; prints seconds and resources
  local token poll start end
  token=$("$RHIP" token --data "$WORK/data" --role "$1" 2>/dev/null | tail -1)
  start=$(date +%s.%N)
  poll=$(curl -s -D - -o /dev/null -H "Authorization: Bearer $token" -H 'Prefer: respond-async' "$BASE/\$export$2" |
         tr -d '\r' | sed -n 's/^Content-Location: //Ip')
  while [ "$(curl -s -o "$WORK/manifest-$1.json" -w '%{http_code}' -H "Authorization: Bearer $token" "$poll")" = 202 ]; do sleep 0.05; done
  end=$(date +%s.%N)
  rm -rf "$WORK/out-$1" && mkdir -p "$WORK/out-$1"
  node -e 'const m=require(process.argv[1]);console.log(m.output.map(o=>o.url).join("\n"))' "$WORK/manifest-$1.json" |
    while read -r url; do curl -s -H "Authorization: Bearer $token" -o "$WORK/out-$1/$(basename "$url")" "$url"; done
  local n; n=$(cat "$WORK"/out-$1/*.ndjson | wc -l)
  echo "$1$2: $n resources in $(echo "$end - $start" | bc) s ($(echo "$n / ($end - $start)" | bc) resources/s), $(du -sh "$WORK/out-$1" | cut -f1)"
}
run admin ""
run cdc ""
# The generator's names and phones must not be in the de-identified files.
leaks=$(grep -ohE '"(text|value)":"(1[3-9][0-9]{9})"' "$WORK"/out-cdc/*.ndjson | head -3 || true)
names=$(head -c 20000000 "$WORK/out-admin/Patient.ndjson" | grep -oE '"family":"[^"]+"' | sort -u | head -50 |
        sed -E 's/"family":"([^"]+)"/\1/' | while read -r f; do grep -l "\"$f" "$WORK"/out-cdc/Patient.ndjson || true; done | head -1)
echo "phones in the de-identified export: ${leaks:-none}; surnames as a name field: ${names:-none}"
