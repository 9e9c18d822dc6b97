-- ENQUEUE / ENQUEUE_LATER for a batch of jobs, atomically.
-- ARGV: prefix, enqueue rule, enqueue_later rule, ended states, the batch as
-- JSON, then the payloads of all jobs back to back (one argument instead of
-- one per job, each cut out by its length). Each JSON row is (all text, null
-- when absent): id task queue tenant priority pk max_attempts timeout run_at_us
-- delay_us unique_key batch_id meta ev lane uf, then the payload's length.
-- Returns {created_at, then per job: run_at (an integer) for a job stored now
-- (queued when run_at <= created_at, else scheduled), or the codec.FIELDS values
-- of the job already there (same id, or a live job of the same tenant and key)}.
-- A stored job costs its hash, its event and one ready-set member; the ready,
-- delayed and listing sets are written once per call.
local now_rule, later_rule = rule(ARGV[2]), nil
local ended = nil -- read by the first unique key only
local rows = cjson.decode(ARGV[5])
local UNIQUE = P .. ':unique'
local LANES = P .. ':lanes'
local NULL = cjson.null
local out = {NOW}
local woken = {}
local lanes = {}
local moves = new_moves()
local ready, delayed = {}, {}
local stored = {}

-- One EXISTS for the whole batch: when none of its ids is stored yet, the usual
-- case, no row needs a check of its own.
local some_exist = false
do
  local keys = {}
  for i, row in ipairs(rows) do
    keys[i] = P .. ':job:' .. row[1]
  end
  for first = 1, #keys, SLICE do
    local last = math.min(first + SLICE - 1, #keys)
    if redis.call('EXISTS', unpack(keys, first, last)) > 0 then some_exist = true end
  end
end

local function live_unique(uf)
  local id = redis.call('HGET', UNIQUE, uf)
  if not id then return nil end
  local state = redis.call('HGET', P .. ':job:' .. id, 'state')
  ended = ended or set_of(ARGV[4])
  if state and not ended[state] then return id end
  return nil
end

local function store(row, payload)
  local id, queue = row[1], row[3]
  local job = {id = id, queue = queue, ev = row[14], lane = row[15]}
  if row[12] ~= NULL then job.batch = row[12] end
  local run_at = NOW + tonumber(row[10])
  if row[9] ~= NULL then run_at = tonumber(row[9]) end
  local r = now_rule
  if run_at > NOW then
    -- Read only for a job due later: most enqueues never need it.
    later_rule = later_rule or rule(ARGV[3])
    r = later_rule
  end
  -- The member place() would add, added with the rest of the batch below.
  local at = run_at
  if at < 0 then at = 0 end
  local member = row[6] .. string.format('%016d', at) .. id
  if run_at <= NOW then
    push(ready, queue, member)
    woken[queue] = (woken[queue] or 0) + 1
  else
    push(delayed, queue, run_at)
    push(delayed, queue, member)
  end
  local fields = {'id', id, 'task', row[2], 'queue', queue, 'tenant', row[4],
                  'state', r.target, 'payload', payload, 'priority', row[5], 'pk', row[6],
                  'attempts', '0', 'max_attempts', row[7], 'created_at', NOW_S,
                  'run_at', int(run_at), 'meta', row[13], 'rk', member, 'ev', job.ev,
                  'lane', job.lane}
  if row[8] ~= NULL then fields[#fields + 1] = 'timeout'; fields[#fields + 1] = row[8] end
  if row[12] ~= NULL then fields[#fields + 1] = 'batch_id'; fields[#fields + 1] = row[12] end
  if row[11] ~= NULL then
    fields[#fields + 1] = 'unique_key'; fields[#fields + 1] = row[11]
    fields[#fields + 1] = 'uf'; fields[#fields + 1] = row[16]
    redis.call('HSET', UNIQUE, row[16], id)
  end
  redis.call('HSET', P .. ':job:' .. id, unpack(fields))
  stored[id] = true
  if not lanes[job.lane] then
    lanes[job.lane] = true
    redis.call('SADD', LANES, job.lane)
  end
  moves.note(job, r.target)
  emit_all(job, r, stamped('{}', r, 0, nil, run_at))
  return run_at
end

local payloads, offset = ARGV[6], 0
for i, row in ipairs(rows) do
  local size = row[17]
  local payload = string.sub(payloads, offset + 1, offset + size)
  offset = offset + size
  local other = nil
  if stored[row[1]] or (some_exist and redis.call('EXISTS', P .. ':job:' .. row[1]) == 1) then
    other = row[1]
  elseif row[11] ~= NULL then
    other = live_unique(row[16])
  end
  if other then
    out[i + 1] = fetch(other)
  else
    out[i + 1] = store(row, payload)
  end
end
for queue, members in pairs(ready) do
  zadd_all(P .. ':ready:' .. queue, 0, members)
end
for queue, args in pairs(delayed) do
  for first = 1, #args, SLICE do
    redis.call('ZADD', P .. ':delayed:' .. queue,
               unpack(args, first, math.min(first + SLICE - 1, #args)))
  end
end
moves.apply()
for queue, n in pairs(woken) do
  signal(queue, n)
end
return out
