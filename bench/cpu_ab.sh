#!/usr/bin/env bash
# Server CPU per request, two binaries alternately on the same store (a noisy machine
# moves rates, much less the CPU a request costs): utime + stime of the server from
# /proc/PID/stat over a wrk run, divided by the requests served.
#
#   bash bench/cpu_ab.sh OLD_RHIP NEW_RHIP [ROUNDS]     # store of bench/fhir_server.sh
#   EXTRA="--threads 2" bash bench/cpu_ab.sh build/rhip build/rhip
set -euo pipefail
cd "$(dirname "$0")/.."
A=$1; B=$2; ROUNDS=${3:-2}
PATIENTS=${PATIENTS:-100000}; export PATIENTS
WORK=${WORK:-/tmp/rhip-bench-$PATIENTS}; PORT=${PORT:-18080}
[ -f "$WORK/data/.loaded" ] || { echo "no store in $WORK: run bench/fhir_server.sh first" >&2; exit 1; }
TOKEN=$("$A" token --data "$WORK/data" --role admin --ttl 36000 2>/dev/null | tail -1)
{ echo "wrk.headers[\"Authorization\"] = \"Bearer $TOKEN\""; cat bench/lua/read.lua; } > "$WORK/ab-read.lua"
printf 'request = function() return wrk.format("GET", "/healthz") end\n' > "$WORK/ab-healthz.lua"
tick=$(getconf CLK_TCK)
cpu() {  # PID LUA SECONDS -> "rps µs/request"
  local s0 s1 out req
  s0=$(awk '{print $14+$15}' /proc/$1/stat)
  out=$(wrk -t1 -c16 -d"$3"s -s "$2" "http://127.0.0.1:$PORT")
  s1=$(awk '{print $14+$15}' /proc/$1/stat)
  req=$(grep -E "requests in" <<<"$out" | awk '{print $1}')
  echo "$(grep Requests/sec <<<"$out" | awk '{print $2}')/s $(( (s1 - s0) * 1000000 / tick / req )) us"
}
echo "| binary | /healthz rate, CPU/request | read by id rate, CPU/request |"
echo "|---|---|---|"
for _ in $(seq "$ROUNDS"); do
  for BIN in "$A" "$B"; do
    "$BIN" serve --data "$WORK/data" --port "$PORT" --rate-limit 0 ${EXTRA:-} >"$WORK/ab-serve.log" 2>&1 &
    PID=$!
    for _ in $(seq 600); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.3; done
    wrk -t1 -c16 -d3s -s "$WORK/ab-read.lua" "http://127.0.0.1:$PORT" >/dev/null  # warm-up
    echo "| $BIN | $(cpu $PID "$WORK/ab-healthz.lua" 6) | $(cpu $PID "$WORK/ab-read.lua" 8) |"
    kill $PID; wait $PID 2>/dev/null || true
  done
done
