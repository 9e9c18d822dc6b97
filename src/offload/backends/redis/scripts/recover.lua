-- EXPIRE running jobs whose lease has passed, or EXPIRE_DEAD on their last attempt.
-- ARGV: prefix, expire rule, expire-dead rule, error JSON for the dead, limit.
-- Returns the recovered jobs' fields.
local again, dead = rule(ARGV[2]), rule(ARGV[3])
local out = {}
local ids = redis.call('ZRANGEBYSCORE', RUNNING, '-inf', NOW_S, 'LIMIT', 0, tonumber(ARGV[5]))
for _, id in ipairs(ids) do
  local job = load(id)
  if not job or not again.sources[job.state] then
    redis.call('ZREM', RUNNING, id)
  else
    local data = '{"worker":' .. cjson.encode(job.worker or cjson.null) .. ',"attempt":'
      .. int(job.attempts) .. '}'
    if job.attempts >= job.max_attempts then
      finish(job, dead, data, {'error', ARGV[4]})
    else
      release(job, again, NOW, data)
    end
    out[#out + 1] = fetch(id)
  end
end
return out
