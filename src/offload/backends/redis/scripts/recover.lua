-- EXPIRE running jobs whose lease has passed, EXPIRE_DEAD on their last attempt,
-- or EXPIRE_CANCELLED when a cancel was asked for while they ran; EXPIRE_DISCARD
-- instead of EXPIRE_DEAD for a task without dead letter (meta "discard", see
-- job.DISCARD_META).
-- ARGV: prefix, expire rule, expire-dead rule, the dead's error JSON
-- (event_data.LEASE_EXPIRED), limit, expire-cancelled rule, expire-discard rule.
-- Returns the recovered jobs' fields.
local again, dead, cancelled = rule(ARGV[2]), rule(ARGV[3]), rule(ARGV[6])
local discard = rule(ARGV[7])

local function discarded(id)
  local meta = redis.call('HGET', P .. ':job:' .. id, 'meta')
  return meta ~= false and meta ~= '{}' and cjson.decode(meta).discard == true
end
local out = {}
local w = new_writes()
local ids = redis.call('ZRANGEBYSCORE', RUNNING, '-inf', NOW_S, 'LIMIT', 0, tonumber(ARGV[5]))
for _, id in ipairs(ids) do
  local job = load(id)
  if not job or not again.sources[job.state] then
    redis.call('ZREM', RUNNING, id)
  else
    if job.cancel then
      apply(job, cancelled, {}, w)
    elseif job.attempts >= job.max_attempts then
      apply(job, discarded(id) and discard or dead, {error = ARGV[4]}, w)
    else
      apply(job, again, {}, w)
    end
    out[#out + 1] = fetch(id)
  end
end
w.flush()
return out
