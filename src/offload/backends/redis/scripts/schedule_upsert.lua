-- Create or replace a schedule, keeping its history: created_at, last_run_at
-- and last_job_id survive a replace; updated_at is now.
-- ARGV: prefix, schedule lane (tenant and id), next_run_at_us or "", then the
-- replaced fields as (name, value) pairs (codec.schedule_rule).
-- Returns codec.SCHEDULE_KEPT: created_at, updated_at, last_run_at, last_job_id.
local lane = ARGV[2]
local k = P .. ':schedule:' .. lane
local due = P .. ':schedules:due'
local old = redis.call('HMGET', k, 'created_at', 'last_run_at', 'last_job_id')
local created = old[1] or NOW_S
local fields = {'created_at', created, 'updated_at', NOW_S}
for i = 4, #ARGV do
  fields[#fields + 1] = ARGV[i]
end
if old[2] then fields[#fields + 1] = 'last_run_at'; fields[#fields + 1] = old[2] end
if old[3] then fields[#fields + 1] = 'last_job_id'; fields[#fields + 1] = old[3] end
if ARGV[3] ~= '' then
  fields[#fields + 1] = 'next_run_at'; fields[#fields + 1] = ARGV[3]
  redis.call('ZADD', due, ARGV[3], lane)
else
  redis.call('ZREM', due, lane)
end
-- A replace drops the optional fields the new rule leaves out (timeout, next run).
redis.call('DEL', k)
redis.call('HSET', k, unpack(fields))
redis.call('SADD', P .. ':schedules', lane)
return {created, NOW_S, old[2], old[3]}
