-- START up to `limit` due jobs, taking the queues in order (first non-empty wins).
-- ARGV: prefix, start rule, worker id, limit, lease_for_us, token base, queues...
-- Returns the leased jobs' fields.
local r = rule(ARGV[2])
local worker, limit, token_base = ARGV[3], tonumber(ARGV[4]), ARGV[6]
local expires = NOW + tonumber(ARGV[5])
local expires_s = int(expires)
local worker_json = cjson.encode(worker)
local out = {}
-- Bound the work one call does when a backlog of delayed jobs comes due at once;
-- the rest move on the following calls.
local PROMOTE_MAX = 1000

local function promote(queue)
  local delayed = P .. ':delayed:' .. queue
  local due = redis.call('ZRANGEBYSCORE', delayed, '-inf', NOW_S, 'LIMIT', 0, PROMOTE_MAX)
  if #due == 0 then return end
  local args = {}
  for i, member in ipairs(due) do
    args[2 * i - 1] = 0
    args[2 * i] = member
  end
  redis.call('ZADD', P .. ':ready:' .. queue, unpack(args))
  redis.call('ZREM', delayed, unpack(due))
end

local function start(job)
  local attempt = int(job.attempts + 1)
  redis.call('HSET', P .. ':job:' .. job.id, 'state', r.target, 'attempts', attempt,
             'worker_id', worker, 'lease_token', token_base .. int(#out + 1),
             'lease_expires_at', expires_s, 'started_at', NOW_S, 'rk', '',
             'cancel_requested', '0')
  redis.call('ZADD', RUNNING, expires, job.id)
  move(job, r.target)
  emit_all(job, r, '{"attempt":' .. attempt .. ',"worker":' .. worker_json .. '}')
  out[#out + 1] = fetch(job.id)
end

local function take(queue, want)
  local ready = P .. ':ready:' .. queue
  local members = redis.call('ZRANGE', ready, 0, want - 1)
  if #members == 0 then return 0 end
  redis.call('ZREM', ready, unpack(members))
  for _, member in ipairs(members) do
    -- 20 characters of priority and 16 of run_at come before the id.
    local job = guard(string.sub(member, 37), nil, r)
    if job and job.rk == member then start(job) end
  end
  return #members
end

for i = 7, #ARGV do
  if #out >= limit then break end
  local queue = ARGV[i]
  promote(queue)
  -- Each round removes what it read, so a stale member cannot stall the loop.
  while #out < limit and take(queue, limit - #out) > 0 do end
end
return out
