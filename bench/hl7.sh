#!/usr/bin/env bash
# HL7 v2 over MLLP (issue 4): a fresh server per run takes LIMIT messages of FILE from
# `rhip hl7 send --connections CONN`; prints the ACK rate and latency, the server CPU per
# message by thread kind while the messages were received (utime + stime from
# /proc/PID/task/*/stat), then the time until every accepted message was applied to the
# FHIR store (the appliers run in the background; AA means "stored raw", not "applied").
#
#   bash bench/hl7.sh                                  # region of bench/import.sh, 20,000 ADT
#   FILE=/tmp/hreg/hl7v2/oru.hl7 RUNS=3 bash bench/hl7.sh
#   RATE=5000 bash bench/hl7.sh                       # paced: the ACK p99 at 5,000 msgs/s
#   FILE="$R/hl7v2/adt.hl7 $R/hl7v2/oru.hl7" LIMIT=63909 bash bench/hl7.sh  # a stream longer than the queue
#   BINS="/tmp/rhip.old build/rhip" bash bench/hl7.sh # A/B, binaries alternated
#   EXTRA="--hl7-appliers 8" bash bench/hl7.sh        # more flags for rhip serve
set -euo pipefail
cd "$(dirname "$0")/.."
REGION=${REGION:-/tmp/rhip-bench-import-10000/region}
FILE=${FILE:-$REGION/hl7v2/adt.hl7}
LIMIT=${LIMIT:-20000}; CONN=${CONN:-8}; RUNS=${RUNS:-1}; RATE=${RATE:-}
BINS=${BINS:-build/rhip}; WORK=${WORK:-/tmp/rhip-bench-hl7}
PORT=${PORT:-18095}; MLLP=${MLLP:-12595}
if [ ! -f "${FILE%% *}" ]; then
  echo "no $FILE: generating the region (rhip gen --residents 10000 --years 3 --seed 3)" >&2
  "${BINS%% *}" gen --residents 10000 --years 3 --seed 3 --out "$REGION"
fi
tick=$(getconf CLK_TCK)
# Per thread name: CPU ticks of every thread of PID, "name ticks" lines.
threads() { for t in /proc/$1/task/*; do
  awk '{ s=$0; sub(/^[^(]*\(/, "", s); name=substr(s, 1, index(s, ")")-1); sub(/^[^)]*\) /, "", s);
         split(s, f, " "); print name, f[12]+f[13] }' "$t/stat" 2>/dev/null; done; }
for _ in $(seq "$RUNS"); do
  for BIN in $BINS; do
    rm -rf "$WORK"; mkdir -p "$WORK"
    "$BIN" serve --data "$WORK/data" --port "$PORT" --mllp-port "$MLLP" --insecure-dev --rate-limit 0 ${EXTRA:-} \
      >"$WORK/serve.log" 2>&1 &
    PID=$!
    for _ in $(seq 300); do
      curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break
      kill -0 $PID 2>/dev/null || break
      sleep 0.2
    done
    curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null || {
      echo "$BIN serve did not start: $(tail -3 "$WORK/serve.log")" >&2; kill $PID 2>/dev/null; exit 1; }
    threads $PID >"$WORK/t0"
    if ! out=$("$BIN" hl7 send --to "127.0.0.1:$MLLP" --connections "$CONN" --quiet --limit "$LIMIT" \
      ${RATE:+--rate "$RATE"} $FILE); then
      echo "$BIN: rhip hl7 send failed: $out (server log: $WORK/serve.log)" >&2
      kill $PID; exit 1
    fi
    threads $PID >"$WORK/t1"
    t_acked=$(date +%s.%N)
    sent=$(grep -oE '^sent [0-9]+' <<<"$out" | awk '{print $2}')
    [ "${sent:-0}" -gt 0 ] || { echo "$BIN: nothing sent: $out" >&2; kill $PID; exit 1; }
    cpu=$(awk -v n="$sent" -v tick="$tick" 'NR==FNR { a[$1]+=$2; next } { b[$1]+=$2 }
      END { for (k in b) { d=b[k]-a[k]; tot+=d; if (d>0) printf "%s %d, ", k, d*1e6/tick/n }
            printf "total %d us/msg", tot*1e6/tick/n }' "$WORK/t0" "$WORK/t1")
    for _ in $(seq 3000); do  # 10 minutes at most
      st=$(curl -sf "http://127.0.0.1:$PORT/api/hl7/status" || echo '{"queued":-1}')
      grep -q '"queued":0,' <<<"$st" && break
      sleep 0.2
    done
    grep -q '"queued":0,' <<<"$st" || echo "  still queued after 10 minutes: $st" >&2
    t_applied=$(date +%s.%N)
    echo "$BIN: $out"
    echo "  server CPU while receiving: $cpu"
    echo "  applied $(grep -oE '"processed":[0-9]+' <<<"$st" | cut -d: -f2), failed $(grep -oE '"failed":[0-9]+' <<<"$st" | cut -d: -f2), $(awk -v a="$t_acked" -v b="$t_applied" 'BEGIN { printf "%.1f", b-a }') s after the last ACK"
    kill $PID; wait $PID 2>/dev/null || true
  done
done
