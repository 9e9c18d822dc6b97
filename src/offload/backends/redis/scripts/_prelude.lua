-- Shared by every offload script. The loader wraps each script's body in
-- main() after this prelude and stores the event counter once main returns.
--
-- Calling convention: KEYS[1] is the deployment's event counter (it routes the
-- call to the slot of the hash tag); ARGV[1] is the tagged prefix, e.g.
-- "{offload}". Every other key is derived from the prefix, so all of them live
-- in that one slot and a script can touch any of them on a cluster.
--
-- Transition rules arrive as "sources|target|events|leased" strings generated
-- from offload.lifecycle, so the state machine is written down once, in Python.
-- Times are integer microseconds from the server's TIME. Hot helpers build keys
-- by plain concatenation: string work is most of a script's cost.

local P = ARGV[1]
local SEQ = KEYS[1]
local RUNNING = P .. ':running'
local FINISHED = P .. ':finished'
local FEED = P .. ':feed'
local SIGNAL_CAP = 64

local function int(n)
  return string.format('%d', n)
end

local NOW
do
  local t = redis.call('TIME')
  NOW = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local NOW_S = int(NOW)

local function split(s, sep)
  local out = {}
  for part in string.gmatch(s, '([^' .. sep .. ']+)') do
    out[#out + 1] = part
  end
  return out
end

local function set_of(csv)
  local out = {}
  for _, v in ipairs(split(csv, ',')) do
    out[v] = true
  end
  return out
end

local function rule(s)
  local parts = {}
  for part in string.gmatch(s .. '|', '([^|]*)|') do
    parts[#parts + 1] = part
  end
  return {sources = set_of(parts[1]), target = parts[2], events = split(parts[3], ','),
          leased = parts[4] == '1'}
end

-- Event ids: read once, counted here, stored once at the end (see the loader).
local last_eid = nil
local function next_eid()
  if not last_eid then last_eid = tonumber(redis.call('GET', SEQ) or '0') end
  last_eid = last_eid + 1
  return last_eid
end
local function flush_eid()
  if last_eid then redis.call('SET', SEQ, int(last_eid)) end
end

-- One event, kept in the job's list and in the feed stream as the same text.
-- job.ev is the stored '"job":…,"tenant":…' fragment, encoded once at enqueue.
local function emit(job, kind, data)
  local eid = int(next_eid())
  local ev = '{"id":' .. eid .. ',' .. job.ev .. ',"kind":"' .. kind .. '","at":' .. NOW_S
    .. ',"data":' .. data .. '}'
  redis.call('RPUSH', P .. ':events:' .. job.id, ev)
  redis.call('XADD', FEED, eid .. '-0', 'e', ev)
end

local function emit_all(job, r, data)
  for _, kind in ipairs(r.events) do
    emit(job, kind, data)
  end
end

-- Concatenate two JSON objects given as text.
local function merge(a, b)
  if a == '{}' then return b end
  if b == '{}' then return a end
  return string.sub(a, 1, -2) .. ',' .. string.sub(b, 2)
end

-- The listing index per (state, lane) follows every state change; its sizes
-- are the job counts, so no separate counter can drift. A job of a batch moves
-- in its batch's per-state index the same way: those sizes are the batch's counts.
local function move(job, to)
  if job.state then
    redis.call('ZREM', P .. ':idx:' .. job.state .. ':' .. job.lane, job.id)
  end
  redis.call('ZADD', P .. ':idx:' .. to .. ':' .. job.lane, 0, job.id)
  if job.batch then
    if job.state then
      redis.call('ZREM', P .. ':bidx:' .. job.state .. ':' .. job.batch, job.id)
    end
    redis.call('ZADD', P .. ':bidx:' .. to .. ':' .. job.batch, 0, job.id)
  end
end

-- Scripts that move many jobs gather their sorted-set writes per key and send
-- each key's once at the end: one call per key instead of one per job, in
-- slices that stay well inside Lua's limit on unpacked values.
local SLICE = 1000

local function push(lists, key, value)
  local list = lists[key]
  if not list then
    list = {}
    lists[key] = list
  end
  list[#list + 1] = value
end

-- ZADD members all scored `score`.
local function zadd_all(key, score, members)
  for first = 1, #members, SLICE do
    local args = {}
    for i = first, math.min(first + SLICE - 1, #members) do
      args[#args + 1] = score
      args[#args + 1] = members[i]
    end
    redis.call('ZADD', key, unpack(args))
  end
end

local function zrem_all(key, members)
  for first = 1, #members, SLICE do
    redis.call('ZREM', key, unpack(members, first, math.min(first + SLICE - 1, #members)))
  end
end

-- The batched form of move() below: note() per job, then apply() once.
local function new_moves()
  local rem, add = {}, {}
  local m = {}
  function m.note(job, to)
    if job.state then
      push(rem, P .. ':idx:' .. job.state .. ':' .. job.lane, job.id)
      if job.batch then push(rem, P .. ':bidx:' .. job.state .. ':' .. job.batch, job.id) end
    end
    push(add, P .. ':idx:' .. to .. ':' .. job.lane, job.id)
    if job.batch then push(add, P .. ':bidx:' .. to .. ':' .. job.batch, job.id) end
  end
  function m.apply()
    for key, ids in pairs(rem) do zrem_all(key, ids) end
    for key, ids in pairs(add) do zadd_all(key, 0, ids) end
  end
  return m
end

-- A waiting job sits in its queue's ready set (due) or delayed set (later).
-- Ready members sort by text: inverted priority (20), run_at (16), id.
local function place(id, queue, pk, run_at)
  local at = run_at
  if at < 0 then at = 0 end
  local member = pk .. string.format('%016d', at) .. id
  if run_at <= NOW then
    redis.call('ZADD', P .. ':ready:' .. queue, 0, member)
  else
    redis.call('ZADD', P .. ':delayed:' .. queue, run_at, member)
  end
  return member
end

local function unplace(job)
  if job.rk and job.rk ~= '' then
    redis.call('ZREM', P .. ':ready:' .. job.queue, job.rk)
    redis.call('ZREM', P .. ':delayed:' .. job.queue, job.rk)
  end
end

local function signal(queue, n)
  local k = P .. ':signal:' .. queue
  local tokens = {}
  for i = 1, math.min(n, SIGNAL_CAP) do
    tokens[i] = '1'
  end
  redis.call('LPUSH', k, unpack(tokens))
  redis.call('LTRIM', k, 0, SIGNAL_CAP - 1)
end

-- Lease fields (token, expiry, worker, cancel request) mean something only
-- while the job runs; they are overwritten by the next lease, not deleted.
local function load(id)
  local v = redis.call('HMGET', P .. ':job:' .. id, 'state', 'lease_token', 'tenant', 'queue',
                       'attempts', 'rk', 'pk', 'max_attempts', 'worker_id',
                       'cancel_requested', 'uf', 'ev', 'lane', 'batch_id')
  if not v[1] then return nil end
  return {id = id, state = v[1], token = v[2], tenant = v[3], queue = v[4],
          attempts = tonumber(v[5]), rk = v[6], pk = v[7], max_attempts = tonumber(v[8]),
          worker = v[9], cancel = v[10] == '1', uf = v[11], ev = v[12], lane = v[13],
          batch = v[14]}
end

-- The job if rule r may move it now (state in sources and, for a leased rule,
-- the caller's token is the current one), else nil.
local function guard(id, token, r)
  local job = load(id)
  if not job or not r.sources[job.state] then return nil end
  if r.leased and job.token ~= token then return nil end
  return job
end

-- HSET the job's fields: the pairs given plus any in `extra`.
local function hset(job, fields, extra)
  if extra then
    for _, v in ipairs(extra) do
      fields[#fields + 1] = v
    end
  end
  redis.call('HSET', P .. ':job:' .. job.id, unpack(fields))
end

-- End a job under rule r (succeeded, dead, cancelled).
local function finish(job, r, data, extra)
  unplace(job)
  redis.call('ZREM', RUNNING, job.id)
  hset(job, {'state', r.target, 'finished_at', NOW_S, 'rk', ''}, extra)
  redis.call('ZADD', FINISHED, NOW, job.id)
  move(job, r.target)
  emit_all(job, r, data)
end

-- Put a job back to waiting under rule r, due at run_at.
local function release(job, r, run_at, data, extra)
  unplace(job)
  redis.call('ZREM', RUNNING, job.id)
  local member = place(job.id, job.queue, job.pk, run_at)
  hset(job, {'state', r.target, 'run_at', int(run_at), 'rk', member}, extra)
  move(job, r.target)
  emit_all(job, r, data)
  if run_at <= NOW then signal(job.queue, 1) end
end

-- The job's values in codec.FIELDS order (the loader defines FIELDS).
local function fetch(id)
  return redis.call('HMGET', P .. ':job:' .. id, unpack(FIELDS))
end

-- Limits and rates: let a key outlive its newest entry by at least `us`, so a
-- key nobody asks about again goes away by itself; never shortens a longer life.
local function keep_for(k, us)
  local ms = math.max(1, math.floor(us / 1000) + 1)
  if redis.call('PTTL', k) < ms then redis.call('PEXPIRE', k, int(ms)) end
end

-- The worker registry: reports by id, and ids scored by when their beat runs out.
local WORKERS = P .. ':workers'
local WORKERS_ALIVE = P .. ':workers:alive'
local PRUNE_MAX = 100

-- Drop up to PRUNE_MAX workers whose beat ran out; listings skip the rest anyway.
local function prune_workers()
  local gone = redis.call('ZRANGEBYSCORE', WORKERS_ALIVE, '-inf', NOW_S, 'LIMIT', 0, PRUNE_MAX)
  if #gone == 0 then return end
  redis.call('HDEL', WORKERS, unpack(gone))
  redis.call('ZREM', WORKERS_ALIVE, unpack(gone))
end

-- ---------------------------------------------------------------------------
