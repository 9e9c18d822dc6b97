-- REDRIVE a dead or cancelled job: queued again now, attempts reset. Refused
-- while another live job holds its unique key.
-- ARGV: prefix, redrive rule, ended states, job id, tenant ("=" + name) or "" for any.
local r = rule(ARGV[2])
local ended = set_of(ARGV[3])
local job = load(ARGV[4])
if not job or not r.sources[job.state] or (ARGV[5] ~= '' and job.tenant ~= string.sub(ARGV[5], 2)) then return false end
local UNIQUE = P .. ':unique'
if job.uf then
  local holder = redis.call('HGET', UNIQUE, job.uf)
  if holder and holder ~= job.id then
    local state = redis.call('HGET', P .. ':job:' .. holder, 'state')
    if state and not ended[state] then return false end
  end
  redis.call('HSET', UNIQUE, job.uf, job.id)
end
local w = new_writes()
apply(job, r, {}, w)
w.flush()
return fetch(job.id)
