-- Remove a schedule and its index entries; the jobs it enqueued stay.
-- ARGV: prefix, schedule lane (tenant and id).
-- Returns 1, or 0 when there was none.
local lane = ARGV[2]
redis.call('ZREM', P .. ':schedules:due', lane)
redis.call('SREM', P .. ':schedules', lane)
return redis.call('DEL', P .. ':schedule:' .. lane)
