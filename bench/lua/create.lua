-- POST a new Patient (server-assigned id) with a unique identifier.
local counter = 0
local thread_id = 0
setup = function(thread)
  thread:set("tid", thread_id)
  thread_id = thread_id + 1
end
request = function()
  counter = counter + 1
  local body = '{"resourceType":"Patient","identifier":[{"system":"http://rhip.health/id/mrn/bench","value":"w' ..
    tostring(tid) .. "-" .. counter .. os.time() .. '"}],"name":[{"text":"王芳","family":"王","given":["芳"]}],' ..
    '"gender":"female","birthDate":"1985-06-01","address":[{"district":"330411"}]}'
  -- wrk.format takes these headers instead of wrk.headers: keep the token (fhir_server.sh sets it there)
  local headers = {["Content-Type"] = "application/fhir+json", ["Prefer"] = "return=minimal"}
  if wrk.headers["Authorization"] then headers["Authorization"] = wrk.headers["Authorization"] end
  return wrk.format("POST", "/fhir/Patient", headers, body)
end
