-- REQUEUE on shutdown: back to queued now, the attempt given back, checkpoint kept.
-- ARGV: prefix, requeue rule, job id, token, has checkpoint, checkpoint.
local r = rule(ARGV[2])
local job = guard(ARGV[3], ARGV[4], r)
if not job then return false end
local extra = {'attempts', int(math.max(0, job.attempts - 1))}
if ARGV[5] == '1' then
  extra[3] = 'checkpoint'
  extra[4] = ARGV[6]
end
release(job, r, NOW, '{}', extra)
return fetch(job.id)
