#!/usr/bin/env bash
# Macro benchmark of the FHIR server (issue: platform core).
# Builds a store of 10 x PATIENTS resources (Patient:Encounter:Observation = 1:3:6)
# with `rhip bench fhir-data` + `rhip import`, serves it, and drives it with wrk
# (2 threads, 16 connections) through each scenario RUNS times; prints the median
# of each figure. A GET /healthz run in the same session is the server's floor.
#
#   bash bench/fhir_server.sh                  # 1,000,000 resources (PATIENTS=100000)
#   PATIENTS=10000 DURATION=5 bash bench/fhir_server.sh   # quick look
set -euo pipefail
cd "$(dirname "$0")/.."
RHIP=${RHIP:-build/rhip}
PATIENTS=${PATIENTS:-100000}
DURATION=${DURATION:-15}
RUNS=${RUNS:-3}
CONN=${CONN:-16}
WORK=${WORK:-/tmp/rhip-bench-$PATIENTS}
PORT=${PORT:-18080}
export PATIENTS

if [ ! -f "$WORK/data/.loaded" ]; then
  rm -rf "$WORK"
  "$RHIP" bench fhir-data --out "$WORK/load" --patients "$PATIENTS"
  /usr/bin/time -f "import: %e s wall, %M KB peak RSS" "$RHIP" import --data "$WORK/data" "$WORK/load" | tail -4
  touch "$WORK/data/.loaded"
fi

# Security is on (issue 6): the load acts as the operator; bench/security.sh compares on and off.
TOKEN=$("$RHIP" token --data "$WORK/data" --role admin --ttl 36000 2>/dev/null | tail -1)
"$RHIP" serve --data "$WORK/data" --port "$PORT" --rate-limit 0 ${THREADS:+--threads $THREADS} >"$WORK/serve.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null || true' EXIT
# The first start after an import links every Patient to a Person (the EMPI): allow a few minutes.
for _ in $(seq 3000); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
run() {  # name script
  local name=$1 script=$2 rps=() p50=() p99=() err=0
  for r in $(seq "$RUNS"); do
    line=$({ echo "wrk.headers[\"Authorization\"] = \"Bearer $TOKEN\""; cat "bench/lua/$script" bench/lua/report.lua; } > "$WORK/s.lua"; \
           wrk -t2 -c"$CONN" -d"${DURATION}s" --latency -s "$WORK/s.lua" "http://127.0.0.1:$PORT" | grep '^RESULT')
    rps+=("$(sed -E 's/.*rps=([0-9.]+).*/\1/' <<<"$line")")
    p50+=("$(sed -E 's/.*p50_ms=([0-9.]+).*/\1/' <<<"$line")")
    p99+=("$(sed -E 's/.*p99_ms=([0-9.]+).*/\1/' <<<"$line")")
    e=$(sed -E 's/.*errors=([0-9]+) non2xx=([0-9]+).*/\1+\2/' <<<"$line"); err=$((err + e))
  done
  printf "| %-36s | %8s | %7s | %7s | %6s |\n" "$name" \
    "$(printf '%s\n' "${rps[@]}" | median)" "$(printf '%s\n' "${p50[@]}" | median)" \
    "$(printf '%s\n' "${p99[@]}" | median)" "$err"
}
cat > "$WORK/healthz.lua" <<'LUA'
request = function() return wrk.format("GET", "/healthz") end
LUA
cp "$WORK/healthz.lua" bench/lua/.healthz.lua
echo "store: $((PATIENTS * 10)) resources; wrk -t2 -c$CONN, ${DURATION}s x $RUNS runs (medians)"
echo "| scenario                             |  req/s   | p50 ms  | p99 ms  | errors |"
echo "|--------------------------------------|----------|---------|---------|--------|"
run "baseline GET /healthz"              .healthz.lua
# A second baseline when nginx is installed: the same bytes as an Observation read (most reads), as a static file
# (2 workers, no access log), in the same session: what this machine serves at most.
if command -v nginx >/dev/null 2>&1; then
  NGX=$WORK/nginx; NPORT=$((PORT + 1)); mkdir -p "$NGX/www"
  curl -sf -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT/fhir/Observation/bp1-e0-o0" -o "$NGX/www/patient.json"
  cat > "$NGX/nginx.conf" <<CONF
worker_processes 2; pid $NGX/nginx.pid; error_log $NGX/error.log;
events { worker_connections 1024; }
http { access_log off; keepalive_requests 1000000;
  server { listen 127.0.0.1:$NPORT; root $NGX/www; location / { default_type application/fhir+json; } } }
CONF
  nginx -c "$NGX/nginx.conf"
  printf 'request = function() return wrk.format("GET", "/patient.json") end\n' > bench/lua/.nginx.lua
  SAVED_PORT=$PORT; PORT=$NPORT
  run "baseline nginx, same bytes (static)" .nginx.lua
  PORT=$SAVED_PORT
  nginx -c "$NGX/nginx.conf" -s stop || true
  rm -f bench/lua/.nginx.lua
fi
run "read by id (Patient/Enc/Obs)"       read.lua
run "search Patient?identifier="         search_identifier.lua
run "search Observation?subject&date=ge" search_obs.lua
run "create Patient (POST)"              create.lua
rm -f bench/lua/.healthz.lua
echo "server peak RSS: $(grep VmHWM /proc/$PID/status | awk '{print $2, $3}')"
echo "store size: $(du -sh "$WORK/data" | cut -f1)"
