-- RETRY after retry_in, or FAIL (dead) when there is no retry_in.
-- ARGV: prefix, rule (retry or fail), job id, token, error JSON, retry_in_us or "".
-- Returns the job's fields, or false when refused.
local r = rule(ARGV[2])
local job = guard(ARGV[3], ARGV[4], r)
if not job then return false end
local data = '{"error":' .. ARGV[5] .. ',"attempt":' .. int(job.attempts) .. '}'
if ARGV[6] == '' then
  finish(job, r, data, {'error', ARGV[5]})
else
  local run_at = NOW + tonumber(ARGV[6])
  release(job, r, run_at, merge(data, '{"run_at":' .. int(run_at) .. '}'), {'error', ARGV[5]})
end
return fetch(job.id)
