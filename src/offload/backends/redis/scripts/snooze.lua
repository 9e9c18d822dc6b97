-- SNOOZE: a limit refused the start, so the job waits again, due after `delay`,
-- with the attempt given back since it never ran. It takes the retry's path:
-- delayed set (or ready and a wake-up when due at once), indexes via move().
-- ARGV: prefix, snooze rule, job id, token, delay_us, event data JSON.
-- Returns the job's fields, or false when refused.
local r = rule(ARGV[2])
local job = guard(ARGV[3], ARGV[4], r)
if not job then return false end
local run_at = NOW + tonumber(ARGV[5])
release(job, r, run_at, ARGV[6], {'attempts', int(math.max(0, job.attempts - 1))})
return fetch(job.id)
