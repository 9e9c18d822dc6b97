-- Admit one start of a key when fewer than `limit` were admitted in the last
-- `period` (a sliding window). The key's zset holds the admitted starts, each
-- a caller-made unique member scored by its time; older ones are pruned here,
-- so the set never holds more than the window.
-- ARGV: prefix, rate key, limit, period_us, member for this start.
-- Returns 0 when admitted, else the microseconds until a start would be.
local k = P .. ':rate:' .. ARGV[2]
local limit, period, member = tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5]
-- A call sent again after a lost reply finds its own start and is admitted once.
if redis.call('ZSCORE', k, member) then return 0 end
redis.call('ZREMRANGEBYSCORE', k, '-inf', int(NOW - period))
if redis.call('ZCARD', k) < limit then
  redis.call('ZADD', k, NOW, member)
  keep_for(k, period)
  return 0
end
if limit <= 0 then return int(period) end
local oldest = redis.call('ZRANGE', k, -limit, -limit, 'WITHSCORES')
return int(math.max(0, tonumber(oldest[2]) + period - NOW))
