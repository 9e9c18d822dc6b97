-- CANCEL_WAITING a waiting job, or record a cancel request on a running one.
-- ARGV: prefix, cancel-waiting rule, cancel-running rule, cancel-requested event
-- kind, job id, tenant ("=" + name) or "" for any.
-- Returns the job's fields, or false when there is no such job (in that tenant).
local waiting, running = rule(ARGV[2]), rule(ARGV[3])
local job = load(ARGV[5])
if not job or (ARGV[6] ~= '' and job.tenant ~= string.sub(ARGV[6], 2)) then return false end
if waiting.sources[job.state] then
  finish(job, waiting, '{}')
elseif running.sources[job.state] and not job.cancel then
  redis.call('HSET', P .. ':job:' .. job.id, 'cancel_requested', '1')
  emit(job, ARGV[4], '{}')
end
return fetch(job.id)
