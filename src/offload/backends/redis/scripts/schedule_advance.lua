-- Compare-and-set a schedule's firing: only while next_run_at is the expected
-- time does it move on, so of several schedulers firing it at once one wins.
-- Times are whole microseconds as text, so equal times are equal strings.
-- ARGV: prefix, schedule lane (tenant and id), expected_us, next_run_at_us or "",
-- job id ("=" + id) or "" to keep the last one.
-- Returns 1, or 0 when the schedule is unknown or has already moved on.
local lane = ARGV[2]
local k = P .. ':schedule:' .. lane
local due = P .. ':schedules:due'
if redis.call('HGET', k, 'next_run_at') ~= ARGV[3] then return 0 end
local fields = {'last_run_at', ARGV[3]}
if ARGV[5] ~= '' then
  fields[#fields + 1] = 'last_job_id'; fields[#fields + 1] = string.sub(ARGV[5], 2)
end
if ARGV[4] ~= '' then
  fields[#fields + 1] = 'next_run_at'; fields[#fields + 1] = ARGV[4]
  redis.call('ZADD', due, ARGV[4], lane)
else
  redis.call('HDEL', k, 'next_run_at')
  redis.call('ZREM', due, lane)
end
redis.call('HSET', k, unpack(fields))
return 1
