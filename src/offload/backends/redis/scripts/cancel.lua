-- CANCEL_WAITING a waiting job, or record a cancel request on a running one
-- (once: a second request changes nothing).
-- ARGV: prefix, cancel-waiting rule, cancel-running rule, cancel-requested event
-- kind, job id, tenant ("=" + name) or "" for any, then the outcome answered
-- when the job was cancelled now, when it runs (asked to stop), when it had ended.
-- Returns {outcome, the job's fields}, or false when there is no such job (in
-- that tenant).
local waiting, running = rule(ARGV[2]), rule(ARGV[3])
local job = load(ARGV[5])
if not job or (ARGV[6] ~= '' and job.tenant ~= string.sub(ARGV[6], 2)) then return false end
local outcome = ARGV[9]
if waiting.sources[job.state] then
  local w = new_writes()
  apply(job, waiting, {}, w)
  w.flush()
  outcome = ARGV[7]
elseif running.sources[job.state] then
  if not job.cancel then
    redis.call('HSET', P .. ':job:' .. job.id, 'cancel_requested', '1')
    emit(job, ARGV[4], '{}')
  end
  outcome = ARGV[8]
end
return {outcome, fetch(job.id)}
