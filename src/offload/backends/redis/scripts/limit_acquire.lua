-- Take (or renew) one of `limit` concurrency slots of a key for a holder.
-- The key's zset holds each holder scored by when its hold runs out; a hold
-- that ran out is dropped first, so a crashed worker's slot comes back.
-- ARGV: prefix, limit key, holder, limit, hold_for_us.
-- Returns 1 when the holder has a slot, 0 when all are taken.
local k = P .. ':limit:' .. ARGV[2]
local holder, limit, hold_for = ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
redis.call('ZREMRANGEBYSCORE', k, '-inf', NOW_S)
if not redis.call('ZSCORE', k, holder) and redis.call('ZCARD', k) >= limit then
  return 0
end
redis.call('ZADD', k, NOW + hold_for, holder)
keep_for(k, hold_for)
return 1
