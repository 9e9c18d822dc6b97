-- Shared by every offload function. The loader puts this prelude and every
-- script's body (as a function of its own) into one library, loaded once with
-- FUNCTION LOAD; each call runs begin(), the body, then stores the event
-- counter (see lua.py). What this file defines is made once, when the library
-- loads: a script's top level used to run on every call, about 25 µs of
-- server time whatever the script then did.
--
-- Calling convention: KEYS[1] is the deployment's event counter (it routes the
-- call to the slot of the hash tag); ARGV[1] is the tagged prefix, e.g.
-- "{offload}". Every other key is derived from the prefix, so all of them live
-- in that one slot and a script can touch any of them on a cluster.
--
-- Transition rules arrive as strings generated from offload.lifecycle
-- (codec.rule: the guard, the events and every effect), so the state machine
-- is written down once, in Python; apply() below writes any transition.
-- Times are integer microseconds from the server's TIME. Hot helpers build keys
-- by plain concatenation: string work is most of a script's cost.

-- The state of one call, set by begin(). Redis runs one call at a time, to its
-- end, so the library's locals can hold it.
local KEYS, ARGV
local P, SEQ, RUNNING, FINISHED, FEED, WORKERS, WORKERS_ALIVE
local NOW, NOW_S
local last_eid, stored_eid
local worker_texts

local SIGNAL_CAP = 64

local function int(n)
  return string.format('%d', n)
end

local function begin(keys, args)
  KEYS, ARGV = keys, args
  P = ARGV[1]
  SEQ = KEYS[1]
  RUNNING = P .. ':running'
  FINISHED = P .. ':finished'
  FEED = P .. ':feed'
  WORKERS = P .. ':workers'
  WORKERS_ALIVE = P .. ':workers:alive'
  local t = redis.call('TIME')
  NOW = tonumber(t[1]) * 1000000 + tonumber(t[2])
  NOW_S = int(NOW)
  last_eid, stored_eid = nil, nil
  worker_texts = {}
end

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

-- A rule is codec.rule(transition): the state machine and each transition's
-- effects, written once in offload.lifecycle and read here as data (a JSON
-- object whose sources are already a set).
local function rule(s)
  return cjson.decode(s)
end

-- The job fields apply() reads for rule r, so that a script moving many jobs
-- reads no more than their transition needs: a due time only to keep it, an
-- attempt counter only to change or stamp it, and so on.
local function reads_of(r)
  local names = {'state', 'lease_token', 'rk', 'queue', 'ev', 'lane', 'batch_id'}
  local stamps = {}
  for _, name in ipairs(r.stamps) do stamps[name] = true end
  if r.attempts ~= 'keep' or stamps.attempt then names[#names + 1] = 'attempts' end
  if stamps.worker then names[#names + 1] = 'worker_id' end
  if r.run_at == 'keep' and (r.waits or stamps.run_at) then names[#names + 1] = 'run_at' end
  if r.waits then names[#names + 1] = 'pk' end
  return names
end

-- Python's datetime.isoformat() of the UTC time `us` (microseconds since the
-- epoch): Redis Lua has no os.date, so the date comes from the day count by
-- the civil-from-days algorithm (H. Hinnant); the fraction is left out when
-- it is zero, as isoformat does. Exact while `us` < 2^53 (up to the year
-- 2255), the bound of every time a script handles as a Lua number.
local function iso(us)
  local secs = math.floor(us / 1000000)
  local frac = us - secs * 1000000
  if frac < 0 then secs, frac = secs - 1, frac + 1000000 end
  local days = math.floor(secs / 86400)
  local rem = secs - days * 86400
  local z = days + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524)
    - math.floor(doe / 146096)) / 365)
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local d = doy - math.floor((153 * mp + 2) / 5) + 1
  local m = mp + 3
  if mp >= 10 then m = mp - 9 end
  local y = yoe + era * 400
  if m <= 2 then y = y + 1 end
  local text = string.format('%04d-%02d-%02dT%02d:%02d:%02d', y, m, d, math.floor(rem / 3600),
                             math.floor(rem % 3600 / 60), rem % 60)
  if frac > 0 then text = text .. string.format('.%06d', frac) end
  return text .. '+00:00'
end

-- Event ids: the first taken by one INCR, the rest counted here and stored
-- once at the end (see the loader); a call that appends one event (most
-- transitions of one job) so makes one call for its id instead of two.
local function next_eid()
  if not last_eid then
    last_eid = redis.call('INCR', SEQ)
    stored_eid = last_eid
  else
    last_eid = last_eid + 1
  end
  return last_eid
end
local function flush_eid()
  if last_eid and last_eid ~= stored_eid then redis.call('SET', SEQ, int(last_eid)) end
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

-- An event of no job (a pause, a resume, a finished batch): in the feed only,
-- and in the control index, scored by time, so that purge.lua can age it out.
-- `tenant` is JSON text; '""' (job.EVERY_TENANT) reaches every tenant's feed.
local function emit_control(tenant, kind, data)
  local eid = int(next_eid())
  local ev = '{"id":' .. eid .. ',"job":null,"tenant":' .. tenant .. ',"kind":"' .. kind
    .. '","at":' .. NOW_S .. ',"data":' .. data .. '}'
  redis.call('XADD', FEED, eid .. '-0', 'e', ev)
  redis.call('ZADD', P .. ':control', NOW_S, eid .. '-0')
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

-- The JSON text of a worker id, kept for the call: a lease call stamps the
-- same one on every job.
local function worker_text(worker)
  if not worker then return 'null' end
  local text = worker_texts[worker]
  if not text then
    text = cjson.encode(worker)
    worker_texts[worker] = text
  end
  return text
end

-- The value of one stamp of offload.lifecycle.Stamp, as JSON text.
local function stamp_value(name, attempts, holder, run_at)
  if name == 'attempt' then return int(attempts) end
  if name == 'worker' then return worker_text(holder) end
  if name == 'run_at' then return '"' .. iso(run_at) .. '"' end
  error('offload: no value for the stamp ' .. name)
end

-- The data of rule r's events: what the caller handed in (JSON text built by
-- offload.event_data), then the stamps the rule names with the job's values
-- after the transition, last so that they win, as event_data.stamped does.
-- r.stamp_text holds the object's text with a slot per value (every third
-- item), filled per job: a lease stamps every job it takes.
local function stamped(handed, r, attempts, holder, run_at)
  local text = r.stamp_text
  if not text then
    if #r.stamps == 0 then return handed end
    text = {'{'}
    for i, name in ipairs(r.stamps) do
      text[3 * i - 1] = '"' .. name .. '":'
      text[3 * i] = ''
      text[3 * i + 1] = ','
    end
    text[3 * #r.stamps + 1] = '}'
    r.stamp_text = text
  end
  for i, name in ipairs(r.stamps) do
    text[3 * i] = stamp_value(name, attempts, holder, run_at)
  end
  return merge(handed, table.concat(text))
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

-- The listing index per (state, lane) follows every state change; its sizes
-- are the job counts, so no separate counter can drift. A job of a batch moves
-- in its batch's per-state index the same way: those sizes are the batch's counts.
-- note() per job, then apply() once.
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
  -- LPUSH answers the list's length: trimmed only when past the cap, which a
  -- worker that keeps up with its queue never lets it reach.
  if redis.call('LPUSH', k, unpack(tokens)) > SIGNAL_CAP then
    redis.call('LTRIM', k, 0, SIGNAL_CAP - 1)
  end
end

-- Lease fields (token, expiry, worker, cancel request) mean something only
-- while the job runs; they are overwritten by the next lease, not deleted.
local function load(id)
  local v = redis.call('HMGET', P .. ':job:' .. id, 'state', 'lease_token', 'tenant', 'queue',
                       'attempts', 'rk', 'pk', 'max_attempts', 'worker_id',
                       'cancel_requested', 'uf', 'ev', 'lane', 'batch_id', 'run_at')
  if not v[1] then return nil end
  return {id = id, state = v[1], token = v[2], tenant = v[3], queue = v[4],
          attempts = tonumber(v[5]), rk = v[6], pk = v[7], max_attempts = tonumber(v[8]),
          worker = v[9], cancel = v[10] == '1', uf = v[11], ev = v[12], lane = v[13],
          batch = v[14], run_at = tonumber(v[15])}
end

-- The fields of reads_of(r) under the names load() gives them.
local READ_AS = {lease_token = 'token', worker_id = 'worker', batch_id = 'batch'}
local NUMERIC = {attempts = true, run_at = true}
local function read(id, r)
  local names = r.reads
  if not names then
    names = reads_of(r)
    r.reads, r.read_as, r.numeric = names, {}, {}
    for i, name in ipairs(names) do
      r.read_as[i] = READ_AS[name] or name
      if NUMERIC[name] then r.numeric[#r.numeric + 1] = i end
    end
  end
  local v = redis.call('HMGET', P .. ':job:' .. id, unpack(names))
  if not v[1] then return nil end
  local job, as = {id = id}, r.read_as
  for _, i in ipairs(r.numeric) do v[i] = tonumber(v[i]) end
  for i = 1, #names do job[as[i]] = v[i] end
  return job
end

-- The job if rule r may move it now (state in sources and, for a leased rule,
-- the caller's token is the current one), else nil; it holds what apply() needs.
local function guard(id, token, r)
  local job = read(id, r)
  if not job or not r.sources[job.state] then return nil end
  if r.leased and job.token ~= token then return nil end
  return job
end

-- What the transitions of one call write to the deployment-wide sets (listing
-- indexes, running, finished, wake-ups), gathered by apply() and sent once per
-- key by flush(), which every script that applies a transition calls at its end.
local function new_writes()
  local w = new_moves()
  local leased, dropped, ended, reopened, woken = {}, {}, {}, {}, {}
  function w.leased(id, expires_s) push(leased, expires_s, id) end
  function w.dropped(id) dropped[#dropped + 1] = id end
  function w.ended(id) ended[#ended + 1] = id end
  function w.reopened(id) reopened[#reopened + 1] = id end
  function w.woken(queue) woken[queue] = (woken[queue] or 0) + 1 end
  function w.flush()
    w.apply()
    zrem_all(RUNNING, dropped)
    for expires_s, ids in pairs(leased) do zadd_all(RUNNING, expires_s, ids) end
    zrem_all(FINISHED, reopened)
    zadd_all(FINISHED, NOW_S, ended)
    for queue, n in pairs(woken) do signal(queue, n) end
  end
  return w
end

local function add(fields, name, value)
  fields[#fields + 1] = name
  fields[#fields + 1] = value
end

-- The attempt counter after rule r: lifecycle.count_attempts in Lua.
local function count_attempts(r, attempts)
  if r.attempts == 'count' then return attempts + 1 end
  if r.attempts == 'give_back' then return math.max(0, attempts - 1) end
  if r.attempts == 'reset' then return 0 end
  return attempts
end

-- The due time after rule r; `after` is the caller's delay in microseconds.
local function due_at(r, run_at, after)
  if r.run_at == 'now' then return NOW end
  if r.run_at == 'after' then return NOW + (after or 0) end
  return run_at
end

-- The lease fields rule r writes; a dropped lease's fields stay behind (they
-- count only while the job runs) and the job leaves the running set.
local function apply_lease(job, r, a, f, w)
  if r.lease == 'grant' then
    add(f, 'worker_id', a.worker)
    add(f, 'lease_token', a.token)
    add(f, 'lease_expires_at', a.expires_s)
    add(f, 'started_at', NOW_S)
    add(f, 'cancel_requested', '0')
    w.leased(job.id, a.expires_s)
    return a.worker
  end
  if r.lease == 'drop' then w.dropped(job.id) end
  return job.worker
end

-- The error, finish time, result and checkpoint rule r writes.
local function apply_outcome(job, r, a, f, w)
  if r.error == 'set' then
    add(f, 'error', a.error)
  elseif r.error == 'clear' then
    redis.call('HDEL', P .. ':job:' .. job.id, 'error')
  end
  if r.finished == 'set' then
    add(f, 'finished_at', NOW_S)
    w.ended(job.id)
  elseif r.finished == 'clear' then
    redis.call('HDEL', P .. ':job:' .. job.id, 'finished_at')
    w.reopened(job.id)
  end
  if r.result and a.result then add(f, 'result', a.result) end
  if r.checkpoint and a.checkpoint then add(f, 'checkpoint', a.checkpoint) end
end

-- Apply rule r to `job` (from load(), or the same fields) as its effect fields
-- say, with the values the caller handed in `a`: data (event data JSON text,
-- '{}' for none), after (delay in us for RUN_AT after), error (JSON), result,
-- checkpoint, and for a grant worker, token and expires_s. A job whose ready
-- member its caller already removed has `taken` set. This is the Lua twin of
-- the memory backend's _apply: the one place a script changes a job's state.
-- Returns the fields written, as HSET pairs.
local function apply(job, r, a, w)
  local f = {'state', r.target}
  local attempts = count_attempts(r, job.attempts)
  if attempts ~= job.attempts then add(f, 'attempts', int(attempts)) end
  local run_at = due_at(r, job.run_at, a.after)
  if run_at ~= job.run_at then add(f, 'run_at', int(run_at)) end
  local holder = apply_lease(job, r, a, f, w)
  apply_outcome(job, r, a, f, w)
  if job.rk and job.rk ~= '' and not job.taken then unplace(job) end
  if r.waits then
    add(f, 'rk', place(job.id, job.queue, job.pk, run_at))
    if run_at <= NOW then w.woken(job.queue) end
  elseif job.rk and job.rk ~= '' then
    add(f, 'rk', '')
  end
  redis.call('HSET', P .. ':job:' .. job.id, unpack(f))
  w.note(job, r.target)
  emit_all(job, r, stamped(a.data or '{}', r, attempts, holder, run_at))
  return f
end

-- The job's values in codec.FIELDS order (the loader defines FIELDS).
local function fetch(id)
  return redis.call('HMGET', P .. ':job:' .. id, unpack(FIELDS))
end

-- Rule r applied to one job, fenced by its token when r is leased: the job's
-- values after it, or false when refused. `a` is what apply() takes.
local function transition(r, id, token, a)
  local job = guard(id, token, r)
  if not job then return false end
  local w = new_writes()
  apply(job, r, a, w)
  w.flush()
  return fetch(id)
end

-- Limits and rates: let a key outlive its newest entry by at least `us`, so a
-- key nobody asks about again goes away by itself; never shortens a longer life.
local function keep_for(k, us)
  local ms = math.max(1, math.floor(us / 1000) + 1)
  if redis.call('PTTL', k) < ms then redis.call('PEXPIRE', k, int(ms)) end
end

-- The worker registry (WORKERS, WORKERS_ALIVE): reports by id, and ids scored
-- by when their beat runs out.
local PRUNE_MAX = 100

-- Drop up to PRUNE_MAX workers whose beat ran out; listings skip the rest anyway.
local function prune_workers()
  local gone = redis.call('ZRANGEBYSCORE', WORKERS_ALIVE, '-inf', NOW_S, 'LIMIT', 0, PRUNE_MAX)
  if #gone == 0 then return end
  redis.call('HDEL', WORKERS, unpack(gone))
  redis.call('ZREM', WORKERS_ALIVE, unpack(gone))
end

-- ---------------------------------------------------------------------------
