-- Patient?identifier=system|value for random existing patients.
local n = tonumber(os.getenv("PATIENTS") or "100000")
math.randomseed(os.time() + 1)
request = function()
  local i = math.random(0, n - 1)
  return wrk.format("GET", "/fhir/Patient?identifier=http://rhip.health/id/mrn/47000001%7CM" .. i)
end
