-- Observation?subject=Patient/x&date=ge2023-06-01 for random patients.
local n = tonumber(os.getenv("PATIENTS") or "100000")
math.randomseed(os.time() + 2)
request = function()
  local i = math.random(0, n - 1)
  return wrk.format("GET", "/fhir/Observation?subject=Patient/bp" .. i .. "&date=ge2023-06-01")
end
