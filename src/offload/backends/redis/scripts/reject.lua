-- REJECT: dead without having run (unknown task, undecodable payload).
-- ARGV: prefix, reject rule, job id, token, error JSON.
local r = rule(ARGV[2])
local job = guard(ARGV[3], ARGV[4], r)
if not job then return false end
finish(job, r, '{"error":' .. ARGV[5] .. '}', {'error', ARGV[5]})
return fetch(job.id)
