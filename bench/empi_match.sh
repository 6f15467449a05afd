#!/usr/bin/env bash
# Patient/$match through the HTTP server with a region's Patients indexed (issue 5:
# p99 ≤ 5 ms with 1,000,000 records). Imports PATIENTS (FHIR Patient NDJSON, e.g.
# from `rhip gen`) into a fresh data folder once, starts `rhip serve` (which links
# every imported record to a Person at its first start: timed), then drives
# POST Patient/$match with 2,000 queries drawn from the same file (a stored
# record's name, sex, birth date and address; no identifier, no phone) with wrk
# (2 threads, 8 connections), after a GET /healthz baseline in the same session.
#
#   rhip gen --residents 250000 --years 1 --seed 13 --out /tmp/m3     # 992,564 Patient records
#   PATIENTS=/tmp/m3/fhir/Patient.ndjson bash bench/empi_match.sh
set -euo pipefail
cd "$(dirname "$0")/.."
RHIP=${RHIP:-build/rhip}
PATIENTS=${PATIENTS:?FHIR Patient NDJSON}
WORK=${WORK:-/tmp/rhip-empi-match}
PORT=${PORT:-18090}
DURATION=${DURATION:-15}
mkdir -p "$WORK"
if [ ! -f "$WORK/data/.loaded" ]; then
  /usr/bin/time -f "import: %e s wall, %M KB peak RSS" "$RHIP" import --data "$WORK/data" "$PATIENTS" | tail -2
  touch "$WORK/data/.loaded"
fi
shuf -n 2000 --random-source=<(yes) "$PATIENTS" > "$WORK/sample.ndjson"
node -e '
  const fs = require("fs");
  const lines = fs.readFileSync(process.argv[1], "utf8").split("\n").filter(Boolean);
  const bodies = [];
  for (const line of lines) {
    const p = JSON.parse(line);
    const q = { resourceType: "Patient", name: p.name, gender: p.gender, birthDate: p.birthDate, address: p.address };
    bodies.push(JSON.stringify({ resourceType: "Parameters", parameter: [{ name: "resource", resource: q }, { name: "count", valueInteger: 10 }] }));
  }
  fs.writeFileSync(process.argv[2], "local bodies = " + JSON.stringify(bodies).replace(/^\[/, "{").replace(/\]$/, "}") +
    "\nlocal i = 0\nrequest = function()\n  i = i + 1\n  return wrk.format(\"POST\", \"/fhir/Patient/$match\", " +
    "{[\"Content-Type\"] = \"application/fhir+json\", [\"Authorization\"] = wrk.headers[\"Authorization\"]}, bodies[i % #bodies + 1])\nend\n");
' "$WORK/sample.ndjson" "$WORK/match.lua"
cat bench/lua/report.lua >> "$WORK/match.lua"
printf 'request = function() return wrk.format("GET", "/healthz") end\n' > "$WORK/healthz.lua"
cat bench/lua/report.lua >> "$WORK/healthz.lua"
# Security is on (issue 6): the load acts as the operator.
TOKEN=$("$RHIP" token --data "$WORK/data" --role admin --ttl 36000 2>/dev/null | tail -1)
for s in healthz match; do sed -i "1i wrk.headers[\"Authorization\"] = \"Bearer $TOKEN\"" "$WORK/$s.lua"; done
START=$(date +%s.%N)
"$RHIP" serve --data "$WORK/data" --port "$PORT" --rate-limit 0 >"$WORK/serve.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null || true' EXIT
until curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null; do sleep 0.2; done
echo "serving after $(echo "$(date +%s.%N) - $START" | bc) s (index, Persons, linking what has no Person)"
grep -o 'empi: .*' "$WORK/serve.log" | head -2
grep VmHWM "/proc/$PID/status"
for s in healthz match; do
  echo "$s: $(wrk -t2 -c8 -d"${DURATION}s" --latency -s "$WORK/$s.lua" "http://127.0.0.1:$PORT" | grep '^RESULT')"
done
kill $PID; wait $PID 2>/dev/null || true
# The same queries through the FHIR service in one process: service time without HTTP or queueing.
"$RHIP" bench empi-match --data "$WORK/data" --queries "$WORK/sample.ndjson" --rounds 3
