-- EXPIRE running jobs whose lease has passed, EXPIRE_DEAD on their last attempt,
-- or EXPIRE_CANCELLED when a cancel was asked for while they ran.
-- ARGV: prefix, expire rule, expire-dead rule, the dead's error JSON
-- (event_data.LEASE_EXPIRED), limit, expire-cancelled rule.
-- Returns the recovered jobs' fields.
local again, dead, cancelled = rule(ARGV[2]), rule(ARGV[3]), rule(ARGV[6])
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
      apply(job, dead, {error = ARGV[4]}, w)
    else
      apply(job, again, {}, w)
    end
    out[#out + 1] = fetch(id)
  end
end
w.flush()
return out
