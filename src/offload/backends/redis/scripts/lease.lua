-- START up to `limit` due jobs, taking the queues in order (first non-empty wins),
-- never one covered by a pause.
-- ARGV: prefix, start rule, worker id, limit, lease_for_us, token base, queues...
-- Returns the leased jobs' fields.
local r = rule(ARGV[2])
local worker, limit, token_base = ARGV[3], tonumber(ARGV[4]), ARGV[6]
local expires = NOW + tonumber(ARGV[5])
local expires_s = int(expires)
local out = {}
-- Bound the work one call does when a backlog of delayed jobs comes due at once;
-- the rest move on the following calls.
local PROMOTE_MAX = 1000

-- A paused tenant's jobs met at the head of a queue are parked: moved to the
-- queue's parked set, which no lease reads, until a resume moves them back.
-- One call parks at most this many per queue and wakes a worker when more may
-- follow, so a backlog of any size drains out of the way in bounded steps.
local SKIP_WINDOW = 1000

-- Pauses, read once: with none in force this is one call on an empty hash and
-- every queue takes the plain path below.
local paused_all, paused_queue, paused_tenant, paused_pair = false, {}, {}, {}
do
  local raw = redis.call('HGETALL', P .. ':pauses')
  for i = 1, #raw, 2 do
    local scope = cjson.decode(raw[i])
    local tenant, queue = scope[1], scope[2]
    if tenant == cjson.null and queue == cjson.null then
      paused_all = true
    elseif tenant == cjson.null then
      paused_queue[queue] = true
    elseif queue == cjson.null then
      paused_tenant[tenant] = true
    else
      paused_pair[queue] = paused_pair[queue] or {}
      paused_pair[queue][tenant] = true
    end
  end
end
if paused_all then return out end

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

-- One HMGET per job reads what the reply needs (FIELDS) and what the lease
-- needs besides (ready member, event fragment, lane); the reply is that read
-- with the started fields patched in, so the job is not read a second time.
local N = #FIELDS
local WANT = {}
-- F.<field> is the field's position in FIELDS, to patch the reply.
local F = {}
for i, f in ipairs(FIELDS) do
  WANT[i] = f
  F[f] = i
end
WANT[N + 1], WANT[N + 2], WANT[N + 3] = 'rk', 'ev', 'lane'

local w = new_writes()
local handed = {worker = worker, expires_s = expires_s, data = '{}'}

-- The job's values when `member` still names a job that may start, else nil.
local function peek(member)
  -- 20 characters of priority and 16 of run_at come before the id.
  local v = redis.call('HMGET', P .. ':job:' .. string.sub(member, 37), unpack(WANT))
  local state = v[F.state]
  if not state or not r.sources[state] or v[N + 1] ~= member then return nil end
  return v
end

-- The member was taken off the ready set already (`taken`); the reply is the
-- read with what apply() wrote patched in.
local function start(v)
  local job = {id = v[F.id], state = v[F.state], attempts = tonumber(v[F.attempts]),
               run_at = tonumber(v[F.run_at]), worker = v[F.worker_id], queue = v[F.queue],
               rk = v[N + 1], taken = true, ev = v[N + 2], lane = v[N + 3]}
  if v[F.batch_id] then job.batch = v[F.batch_id] end
  handed.token = token_base .. int(#out + 1)
  local f = apply(job, r, handed, w)
  for i = 1, #f, 2 do
    local at = F[f[i]]
    if at then v[at] = f[i + 1] end
  end
  v[N + 1], v[N + 2], v[N + 3] = nil, nil, nil
  out[#out + 1] = v
end

local function take(queue, want)
  local ready = P .. ':ready:' .. queue
  local members = redis.call('ZRANGE', ready, 0, want - 1)
  if #members == 0 then return 0 end
  redis.call('ZREM', ready, unpack(members))
  for _, member in ipairs(members) do
    local v = peek(member)
    if v then start(v) end
  end
  return #members
end

-- The same as take, but members whose tenant is `blocked` are parked instead
-- of started, up to SKIP_WINDOW of them.
local function take_skipping(queue, blocked)
  local ready = P .. ':ready:' .. queue
  local parked = 0
  while #out < limit and parked < SKIP_WINDOW do
    local members = redis.call('ZRANGE', ready, 0, math.max(limit - #out, 100) - 1)
    if #members == 0 then return end
    local gone, held = {}, {}
    for _, member in ipairs(members) do
      if #out >= limit then break end
      gone[#gone + 1] = member
      local v = peek(member)
      if v and blocked(v[F.tenant]) then
        held[#held + 1] = 0
        held[#held + 1] = member
      elseif v then
        start(v)
      end
    end
    redis.call('ZREM', ready, unpack(gone))
    if #held > 0 then
      redis.call('ZADD', P .. ':parked:' .. queue, unpack(held))
      parked = parked + #held / 2
    end
  end
  -- Stopped at the bound with room left: the jobs behind may be leasable.
  if #out < limit and redis.call('EXISTS', ready) == 1 then signal(queue, 1) end
end

for i = 7, #ARGV do
  if #out >= limit then break end
  local queue = ARGV[i]
  if not paused_queue[queue] then
    promote(queue)
    local pairs_here = paused_pair[queue]
    if next(paused_tenant) == nil and not pairs_here then
      -- Each round removes what it read, so a stale member cannot stall the loop.
      while #out < limit and take(queue, limit - #out) > 0 do end
    else
      take_skipping(queue, function(tenant)
        return paused_tenant[tenant] or (pairs_here ~= nil and pairs_here[tenant] == true)
      end)
    end
  end
end
w.flush()
return out
