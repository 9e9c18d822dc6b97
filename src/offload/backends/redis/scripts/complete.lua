-- SUCCEED a batch of leased jobs, each fenced by its own token.
-- ARGV: prefix, succeed rule, the items as JSON [[job id, token, result length
-- or -1 for none], ...], then every result back to back (two arguments for the
-- whole batch: packing one argument per field cost more than the work here).
-- Returns one 1/0 per item: applied or refused.
-- Each job costs one read, one write and its events; the running, finished and
-- listing sets are written once per call (a job named twice is refused the
-- second time, since its state changed at the first).
local r = rule(ARGV[2])
local out = {}
local w = new_writes()
local handed = {}
local results, offset = ARGV[4], 0
for _, item in ipairs(cjson.decode(ARGV[3])) do
  local id, token, size = item[1], item[2], item[3]
  local result = nil
  if size >= 0 then
    result = string.sub(results, offset + 1, offset + size)
    offset = offset + size
  end
  local job = guard(id, token, r)
  if job then
    handed.result = result
    apply(job, r, handed, w)
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
w.flush()
return out
