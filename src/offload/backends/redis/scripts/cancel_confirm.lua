-- CANCEL_RUNNING: the worker stopped the job after a cancel request.
-- ARGV: prefix, cancel-running rule, job id, token.
local r = rule(ARGV[2])
local job = guard(ARGV[3], ARGV[4], r)
if not job then return false end
finish(job, r, '{}')
return fetch(job.id)
