-- Lift the pause of exactly one scope, put the jobs leases parked back in their
-- queues and wake the workers of the queues it covered, since nothing else
-- would signal the jobs that waited behind it.
-- ARGV: prefix, scope (codec.pause_field), tenant ("=" + name) or "" for every
-- tenant, queue ("=" + name) or "" for every queue, the `resumed` event's
-- tenant (JSON) and data.
-- Returns 1, or 0 when the scope was not paused.
if redis.call('HDEL', P .. ':pauses', ARGV[2]) == 0 then return 0 end
emit_control(ARGV[5], 'resumed', ARGV[6])

local function wake(queue)
  -- Jobs a lease parked while their scope was paused go back in order; those
  -- of a scope still paused are parked again by the next lease.
  local ready, parked = P .. ':ready:' .. queue, P .. ':parked:' .. queue
  if redis.call('EXISTS', parked) == 1 then
    redis.call('ZUNIONSTORE', ready, 2, ready, parked)
    redis.call('DEL', parked)
  end
  local n = redis.call('ZCARD', ready)
    + redis.call('ZCOUNT', P .. ':delayed:' .. queue, '-inf', NOW_S)
  if n > 0 then signal(queue, n) end
end

if ARGV[4] ~= '' then
  wake(string.sub(ARGV[4], 2))
  return 1
end
-- Every queue the scope's tenant (or any tenant) has used: the lanes name them
-- as "<byte length of tenant>:<tenant><queue>".
local tenant = nil
if ARGV[3] ~= '' then tenant = string.sub(ARGV[3], 2) end
local woken = {}
for _, lane in ipairs(redis.call('SMEMBERS', P .. ':lanes')) do
  local colon = string.find(lane, ':', 1, true)
  local size = tonumber(string.sub(lane, 1, colon - 1))
  local queue = string.sub(lane, colon + size + 1)
  if not woken[queue] and (not tenant or string.sub(lane, colon + 1, colon + size) == tenant) then
    woken[queue] = true
    wake(queue)
  end
end
return 1
