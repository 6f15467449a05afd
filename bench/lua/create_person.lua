-- POST a new Patient (server-assigned id) that looks like a registration of a
-- new resident: varied names, birth dates and sexes, and half of them with a
-- valid ID number (GB 11643 check character), so that the EMPI links each to a
-- person of its own instead of piling every Patient onto one.
local counter = 0
local thread_id = 0
local surnames = {"王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭"}
local given = {"伟", "芳", "娜", "敏", "静", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明", "超",
               "秀英", "桂英", "建华", "志强", "丽", "平", "刚", "辉"}
local weights = {7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2}
local checks = "10X98765432"
setup = function(thread)
  thread:set("tid", thread_id)
  thread_id = thread_id + 1
end
request = function()
  counter = counter + 1
  local n = counter * 2 + tid + os.time() % 100000 * 1000
  local name = surnames[n % 16 + 1] .. given[math.floor(n / 16) % 24 + 1] .. given[math.floor(n / 384) % 24 + 1]
  local y, m, d = 1930 + n % 90, 1 + math.floor(n / 90) % 12, 1 + math.floor(n / 1080) % 28
  local birth = string.format("%04d-%02d-%02d", y, m, d)
  local male = n % 2 == 1
  local ident = '{"system":"http://rhip.health/id/mrn/bench","value":"w' .. tid .. "-" .. counter .. "-" .. os.time() .. '"}'
  do
    local first17 = string.format("330402%04d%02d%02d%03d", y, m, d, (math.floor(n / 30240) % 500) * 2 + (male and 1 or 0))
    local s = 0
    for i = 1, 17 do s = s + tonumber(first17:sub(i, i)) * weights[i] end
    local idnum = first17 .. checks:sub(s % 11 + 1, s % 11 + 1)
    if n % 4 < 2 then ident = ident .. ',{"system":"urn:oid:2.16.156.10011.1.3","value":"' .. idnum .. '"}' end
  end
  local body = '{"resourceType":"Patient","identifier":[' .. ident .. '],"name":[{"text":"' .. name .. '"}],' ..
    '"gender":"' .. (male and "male" or "female") .. '","birthDate":"' .. birth .. '","address":[{"district":"330411"}]}'
  -- wrk.format takes these headers instead of wrk.headers: keep the token (fhir_server.sh sets it there)
  local headers = {["Content-Type"] = "application/fhir+json", ["Prefer"] = "return=minimal"}
  if wrk.headers["Authorization"] then headers["Authorization"] = wrk.headers["Authorization"] end
  return wrk.format("POST", "/fhir/Patient", headers, body)
end
