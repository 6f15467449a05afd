#!/usr/bin/env bash
# Reads by id with security on vs off, in the same session (issue 6).
# Builds a store of 10 x PATIENTS resources (`rhip bench fhir-data`) plus one
# family-doctor contract per patient with institution 47000001, then serves it
# four ways and drives each with wrk (2 threads, CONN connections), RUNS times,
# alternating the configurations so that machine noise hits all of them:
#   base       BASE_RHIP, a binary built from before security existed (if given):
#              the true floor of a read
#   off        rhip serve --insecure-dev (no token checked; the guard still runs as
#              admin and every read is still audited)
#   admin      security on, an admin token (token check + guard + audit)
#   clinician  security on, a clinician of 47000001: every read also checks the
#              care relationship (the contract) of the resource's patient
# A GET /healthz run beside each is that server's floor. Prints medians.
#
# Rate limits are off (--rate-limit 0) so that the load is not throttled.
#
#   BASE_RHIP=/path/to/old/rhip bash bench/security.sh   # PATIENTS=10000 → 100,000 resources
#   PATIENTS=2000 DURATION=5 RUNS=1 bash bench/security.sh   # quick look
set -euo pipefail
cd "$(dirname "$0")/.."
RHIP=${RHIP:-$PWD/build/rhip}
BASE_RHIP=${BASE_RHIP:-}
PATIENTS=${PATIENTS:-10000}
DURATION=${DURATION:-10}
RUNS=${RUNS:-3}
CONN=${CONN:-16}
WORK=${WORK:-/tmp/rhip-bench-security-$PATIENTS}
PORT=${PORT:-18090}
export PATIENTS

if [ ! -f "$WORK/data/.loaded" ]; then
  rm -rf "$WORK"
  "$RHIP" bench fhir-data --out "$WORK/load" --patients "$PATIENTS"
  python3 - "$WORK/load/EpisodeOfCare.ndjson" "$PATIENTS" <<'PY'
import json, sys
with open(sys.argv[1], "w") as f:
    for i in range(int(sys.argv[2])):
        f.write(json.dumps({"resourceType": "EpisodeOfCare", "id": f"bc{i}", "status": "active",
            "type": [{"coding": [{"system": "http://rhip.health/CodeSystem/episode-type", "code": "family-doctor-contract"}]}],
            "patient": {"reference": f"Patient/bp{i}"}, "managingOrganization": {"reference": "Organization/47000001"},
            "period": {"start": "2020-01-01", "end": "2099-12-31"}}) + "\n")
PY
  "$RHIP" import --data "$WORK/data" "$WORK/load" | tail -2
  touch "$WORK/data/.loaded"
fi
ADMIN=$("$RHIP" token --data "$WORK/data" --role admin --ttl 36000 2>/dev/null | tail -1)
CLINICIAN=$("$RHIP" token --data "$WORK/data" --role clinician --org 47000001 --ttl 36000 2>/dev/null | tail -1)

PID=
start() {  # binary, extra serve flags
  local bin=$1; shift
  "$bin" serve --data "$WORK/data" --port "$PORT" ${THREADS:+--threads $THREADS} "$@" >"$WORK/serve.log" 2>&1 &
  PID=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done
  curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null || { echo "server did not start"; cat "$WORK/serve.log"; exit 1; }
  # Warm the page cache and the store's connections before measuring (a fresh server is cold).
  { echo "wrk.headers[\"Authorization\"] = \"Bearer $ADMIN\""; cat bench/lua/read.lua; } > "$WORK/warm.lua"
  wrk -t2 -c"$CONN" -d3s -s "$WORK/warm.lua" "http://127.0.0.1:$PORT" >/dev/null
}
stop() { kill "$PID"; wait "$PID" 2>/dev/null || true; PID=; }
trap '[ -n "$PID" ] && kill $PID 2>/dev/null || true' EXIT

declare -A RPS P50 P99 ERR
once() {  # key script token
  local key=$1 script=$2 token=${3:-}
  { [ -n "$token" ] && echo "wrk.headers[\"Authorization\"] = \"Bearer $token\""; cat "bench/lua/$script" bench/lua/report.lua; } > "$WORK/s.lua"
  local line
  line=$(wrk -t2 -c"$CONN" -d"${DURATION}s" --latency -s "$WORK/s.lua" "http://127.0.0.1:$PORT" | grep '^RESULT')
  RPS[$key]+="$(sed -E 's/.*rps=([0-9.]+).*/\1/' <<<"$line") "
  P50[$key]+="$(sed -E 's/.*p50_ms=([0-9.]+).*/\1/' <<<"$line") "
  P99[$key]+="$(sed -E 's/.*p99_ms=([0-9.]+).*/\1/' <<<"$line") "
  ERR[$key]=$(( ${ERR[$key]:-0} + $(sed -E 's/.*errors=([0-9]+) non2xx=([0-9]+).*/\1+\2/' <<<"$line") ))
}
echo 'request = function() return wrk.format("GET", "/healthz") end' > bench/lua/.healthz.lua
for r in $(seq "$RUNS"); do
  if [ -n "$BASE_RHIP" ]; then
    start "$BASE_RHIP"
    once "base healthz" .healthz.lua
    once "base read (no security)" read.lua
    stop
  fi
  start "$RHIP" --insecure-dev --rate-limit 0
  once "off healthz" .healthz.lua
  once "off read" read.lua
  stop
  start "$RHIP" --rate-limit 0
  once "on healthz" .healthz.lua
  once "on read (admin)" read.lua "$ADMIN"
  once "on read (clinician, care check)" read.lua "$CLINICIAN"
  stop
done
rm -f bench/lua/.healthz.lua
median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "store: $((PATIENTS * 10)) resources + $PATIENTS contracts; wrk -t2 -c$CONN, ${DURATION}s x $RUNS runs (medians)"
echo "| scenario                              |  req/s   | p50 ms  | p99 ms  | errors |"
echo "|---------------------------------------|----------|---------|---------|--------|"
keys=("off healthz" "off read" "on healthz" "on read (admin)" "on read (clinician, care check)")
[ -n "$BASE_RHIP" ] && keys=("base healthz" "base read (no security)" "${keys[@]}")
for k in "${keys[@]}"; do
  printf "| %-37s | %8s | %7s | %7s | %6s |\n" "$k" "$(median <<<"${RPS[$k]}")" "$(median <<<"${P50[$k]}")" \
    "$(median <<<"${P99[$k]}")" "${ERR[$k]}"
done
"$RHIP" audit verify --data "$WORK/data"
