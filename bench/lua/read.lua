-- GET a random Patient / Encounter / Observation by id from `rhip bench fhir-data` (N patients).
local n = tonumber(os.getenv("PATIENTS") or "100000")
math.randomseed(os.time())
request = function()
  local i = math.random(0, n - 1)
  local k = math.random(0, 9)
  local path
  if k == 0 then
    path = "/fhir/Patient/bp" .. i
  elseif k <= 3 then
    path = "/fhir/Encounter/bp" .. i .. "-e" .. (k - 1)
  else
    path = "/fhir/Observation/bp" .. i .. "-e" .. ((k - 4) % 3) .. "-o" .. (k % 2)
  end
  return wrk.format("GET", path)
end
