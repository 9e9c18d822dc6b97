-- SUCCEED a batch of leased jobs, each fenced by its own token.
-- ARGV: prefix, succeed rule, the items as JSON [[job id, token, result length
-- or -1 for none], ...], then every result back to back (two arguments for the
-- whole batch: packing one argument per field cost more than the work here).
-- Returns one 1/0 per item: applied or refused.
-- Each job costs one read, one write and its event; the running, finished and
-- listing sets are written once per call (a job named twice is refused the
-- second time, since its state changed at the first).
local r = rule(ARGV[2])
local out = {}
local moves = new_moves()
local ended = {}
local results, offset = ARGV[4], 0
for _, item in ipairs(cjson.decode(ARGV[3])) do
  local id, token, size = item[1], item[2], item[3]
  local result = nil
  if size >= 0 then
    result = string.sub(results, offset + 1, offset + size)
    offset = offset + size
  end
  local k = P .. ':job:' .. id
  local v = redis.call('HMGET', k, 'state', 'lease_token', 'rk', 'queue', 'ev', 'lane', 'batch_id')
  if v[1] and r.sources[v[1]] and (not r.leased or v[2] == token) then
    local job = {id = id, state = v[1], rk = v[3], queue = v[4], ev = v[5], lane = v[6]}
    if v[7] then job.batch = v[7] end
    unplace(job)
    -- A running job never has a result yet, so "no result" needs no write.
    if result then
      redis.call('HSET', k, 'state', r.target, 'finished_at', NOW_S, 'rk', '',
                 'result', result)
    else
      redis.call('HSET', k, 'state', r.target, 'finished_at', NOW_S, 'rk', '')
    end
    moves.note(job, r.target)
    ended[#ended + 1] = id
    emit_all(job, r, '{}')
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
zrem_all(RUNNING, ended)
zadd_all(FINISHED, NOW_S, ended)
moves.apply()
return out
