#!/usr/bin/env bash
# Runs the libFuzzer targets of a fuzz build (make fuzz-build) for SECONDS each,
# two at a time at nice 19, and prints per target: runs, coverage (cov/ft) and
# findings. Usage: scripts/fuzz.sh BUILD SECONDS TARGET...
# New corpus entries go to BUILD/corpus/TARGET (the committed seeds in
# fuzz/corpus/TARGET stay as they are); crashing inputs to BUILD/findings/.
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:?build dir}; SECONDS_EACH=${2:?seconds}; shift 2
TARGETS=("$@")
PARALLEL=${FUZZ_PARALLEL:-2}
mkdir -p "$BUILD/findings" "$BUILD/logs"
run() {
  local t=$1
  mkdir -p "$BUILD/corpus/$t"
  local dict=()
  [ -f "fuzz/dict/$t.dict" ] && dict=(-dict="fuzz/dict/$t.dict")
  # -timeout 60: every input runs in well under a second, but at nice 19 on a
  # shared 2-core machine a run can be starved for seconds (a 10 s limit once
  # reported a 158-byte query that replays in 2 ms as a "timeout").
  nice -n 19 "$BUILD/fuzz/rhip_fuzz_$t" -max_total_time="$SECONDS_EACH" -timeout=60 -rss_limit_mb=2048 \
    -print_final_stats=1 "${dict[@]}" -artifact_prefix="$BUILD/findings/$t-" \
    "$BUILD/corpus/$t" "fuzz/corpus/$t" >"$BUILD/logs/$t.log" 2>&1
  echo "$?" >"$BUILD/logs/$t.rc"
}
for t in "${TARGETS[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$PARALLEL" ]; do wait -n; done
  run "$t" &
done
wait
status=0
printf '%-10s %12s %8s %8s %s\n' target runs cov ft result
for t in "${TARGETS[@]}"; do
  log="$BUILD/logs/$t.log"
  runs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  last=$(grep -E '^#[0-9]+' "$log" | tail -1)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  rc=$(cat "$BUILD/logs/$t.rc")
  result="no finding"
  if [ "$rc" != 0 ]; then result="FINDING (exit $rc): see $log and $BUILD/findings/"; status=1; fi
  printf '%-10s %12s %8s %8s %s\n' "$t" "${runs:-?}" "${cov:-?}" "${ft:-?}" "$result"
done
exit $status
