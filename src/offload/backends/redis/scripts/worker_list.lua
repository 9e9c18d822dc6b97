-- The reports of workers whose beat has not run out; the others are dropped.
-- ARGV: prefix.
-- Returns the report JSON texts, in no particular order.
prune_workers()
local ids = redis.call('ZRANGEBYSCORE', WORKERS_ALIVE, '(' .. NOW_S, '+inf')
local out = {}
-- HMGET in slices, since unpack() of a long list would overflow Lua's stack.
for first = 1, #ids, 1000 do
  local slice = {unpack(ids, first, math.min(first + 999, #ids))}
  for _, raw in ipairs(redis.call('HMGET', WORKERS, unpack(slice))) do
    if raw then out[#out + 1] = raw end
  end
end
return out
