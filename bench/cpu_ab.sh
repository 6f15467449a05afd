#!/usr/bin/env bash
# Server CPU per request, two binaries alternately on the same store (a noisy machine
# moves rates, much less the CPU a request costs): utime + stime of the server from
# /proc/PID/stat over a wrk run, divided by the requests served.
#
#   bash bench/cpu_ab.sh OLD_RHIP NEW_RHIP [ROUNDS]     # store of bench/fhir_server.sh
#   EXTRA="--threads 2" bash bench/cpu_ab.sh build/rhip build/rhip
#   SCENARIOS="create_person.lua" CONN=16 bash bench/cpu_ab.sh /tmp/rhip.old build/rhip 3
#   DATA_B=/tmp/copy/data bash bench/cpu_ab.sh OLD NEW   # NEW on a data folder of its own
#     (a copy of WORK/data: for builds whose files the other build cannot read)
set -euo pipefail
cd "$(dirname "$0")/.."
A=$1; B=$2; ROUNDS=${3:-2}
PATIENTS=${PATIENTS:-100000}; export PATIENTS
WORK=${WORK:-/tmp/rhip-bench-$PATIENTS}; PORT=${PORT:-18080}
SCENARIOS=${SCENARIOS:-healthz read.lua}   # "healthz" or files under bench/lua/
CONN=${CONN:-16}; SECONDS_EACH=${SECONDS_EACH:-8}
[ -f "$WORK/data/.loaded" ] || { echo "no store in $WORK: run bench/fhir_server.sh first" >&2; exit 1; }
TOKEN=$("$A" token --data "$WORK/data" --role admin --ttl 36000 2>/dev/null | tail -1)
for s in $SCENARIOS; do
  if [ "$s" = healthz ]; then
    printf 'request = function() return wrk.format("GET", "/healthz") end\n' > "$WORK/ab-$s.lua"
  else
    { echo "wrk.headers[\"Authorization\"] = \"Bearer $TOKEN\""; cat "bench/lua/$s"; } > "$WORK/ab-$s.lua"
  fi
done
tick=$(getconf CLK_TCK)
cpu() {  # PID LUA SECONDS -> "rps µs/request"
  local s0 s1 out req
  s0=$(awk '{print $14+$15}' /proc/$1/stat)
  out=$(wrk -t1 -c"$CONN" -d"$3"s -s "$2" "http://127.0.0.1:$PORT")
  s1=$(awk '{print $14+$15}' /proc/$1/stat)
  req=$(grep -E "requests in" <<<"$out" | awk '{print $1}')
  echo "$(grep Requests/sec <<<"$out" | awk '{print $2}')/s $(( (s1 - s0) * 1000000 / tick / req )) us"
}
printf "| binary |"; for s in $SCENARIOS; do printf " %s rate, CPU/request |" "$s"; done; echo
printf "|---|"; for s in $SCENARIOS; do printf -- "---|"; done; echo
for _ in $(seq "$ROUNDS"); do
  for BIN in "$A" "$B"; do
    DATA=$WORK/data; [ "$BIN" = "$B" ] && DATA=${DATA_B:-$WORK/data}
    "$BIN" serve --data "$DATA" --port "$PORT" --rate-limit 0 ${EXTRA:-} >"$WORK/ab-serve.log" 2>&1 &
    PID=$!
    for _ in $(seq 600); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.3; done
    line="| $BIN |"
    for s in $SCENARIOS; do
      wrk -t1 -c"$CONN" -d3s -s "$WORK/ab-$s.lua" "http://127.0.0.1:$PORT" >/dev/null  # warm-up
      line="$line $(cpu $PID "$WORK/ab-$s.lua" "$SECONDS_EACH") |"
    done
    echo "$line"
    kill $PID; wait $PID 2>/dev/null || true
  done
done
