#!/usr/bin/env bash
# Instructions by thread of a `rhip import` (issue 4), counted by callgrind: repeatable
# whatever else the machine runs, so an A/B of two builds holds where wall-clock
# rates move ±15 %. Input: the first LINES lines of each NDJSON file of a generated
# region (kernel time, e.g. WAL writes, is not counted).
#
#   bash bench/import_instructions.sh /tmp/rhip.old build/rhip
#   RESIDENTS=3000 LINES=4000 bash bench/import_instructions.sh build/rhip   # the RESULTS.md input
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || set -- build/rhip
RESIDENTS=${RESIDENTS:-3000}; LINES=${LINES:-4000}
WORK=${WORK:-/tmp/rhip-bench-instr-$RESIDENTS}
command -v valgrind >/dev/null || { echo "valgrind is needed (apt-get install valgrind)" >&2; exit 1; }
if [ ! -d "$WORK/region/fhir" ]; then
  rm -rf "$WORK"
  "$1" gen --residents "$RESIDENTS" --years 3 --seed 3 --out "$WORK/region" >/dev/null 2>&1
fi
rm -rf "$WORK/sub"; mkdir -p "$WORK/sub"
for f in "$WORK"/region/fhir/*.ndjson; do head -n "$LINES" "$f" > "$WORK/sub/$(basename "$f")"; done
echo "input: $(cat "$WORK"/sub/*.ndjson | wc -l) resources"
for b in "$@"; do
  rm -rf "$WORK/data" "$WORK"/cg.out.*
  valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$WORK/cg.out.%p" \
    "$b" import --data "$WORK/data" "$WORK/sub" >/dev/null 2>"$WORK/valgrind.log"
  writer=0; workers=0
  for f in "$WORK"/cg.out.*-*; do
    n=$(awk '/^(summary|totals):/ {print $2; exit}' "$f")
    # thread 1 is main (the reader), 2 the checkpointer, 3 the store's writer, then the workers
    case "${f##*-}" in 01|02) ;; 03) writer=$n ;; *) workers=$((workers + n)) ;; esac
  done
  echo "$b: writer $((writer / 1000000))M, import workers $((workers / 1000000))M instructions"
done
