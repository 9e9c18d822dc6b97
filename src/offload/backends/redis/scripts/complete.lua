-- SUCCEED a batch of leased jobs, each fenced by its own token.
-- ARGV: prefix, succeed rule, then (job id, token, has result, result) quads.
-- Returns one 1/0 per item: applied or refused.
local r = rule(ARGV[2])
local out = {}
for a = 3, #ARGV, 4 do
  local job = guard(ARGV[a], ARGV[a + 1], r)
  if job then
    -- A running job never has a result yet, so "no result" needs no write.
    if ARGV[a + 2] == '1' then
      finish(job, r, '{}', {'result', ARGV[a + 3]})
    else
      finish(job, r, '{}')
    end
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
return out
