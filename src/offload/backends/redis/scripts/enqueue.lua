-- ENQUEUE / ENQUEUE_LATER for a batch of jobs, atomically.
-- ARGV: prefix, enqueue rule, enqueue_later rule, ended states, the batch as
-- JSON, then one payload per job. Each JSON row is (all text, null when absent):
-- id task queue tenant priority pk max_attempts timeout run_at_us delay_us
-- unique_key batch_id meta ev lane uf.
-- Returns per job {1, created_at, run_at, state} for a stored job, or
-- {0, values...} (codec.FIELDS) for the job already there (same id, or a live job of the same
-- tenant and unique key).
local now_rule, later_rule = rule(ARGV[2]), rule(ARGV[3])
local ended = set_of(ARGV[4])
local rows = cjson.decode(ARGV[5])
local UNIQUE = P .. ':unique'
local LANES = P .. ':lanes'
local NULL = cjson.null
local out = {}
local woken = {}
local lanes = {}

local function live_unique(uf)
  local id = redis.call('HGET', UNIQUE, uf)
  if not id then return nil end
  local state = redis.call('HGET', P .. ':job:' .. id, 'state')
  if state and not ended[state] then return id end
  return nil
end

local function store(row, payload)
  local job = {id = row[1], queue = row[3], ev = row[14], lane = row[15]}
  if row[12] ~= NULL then job.batch = row[12] end
  local run_at = NOW + tonumber(row[10])
  if row[9] ~= NULL then run_at = tonumber(row[9]) end
  local r = now_rule
  if run_at > NOW then r = later_rule end
  local member = place(job.id, job.queue, row[6], run_at)
  local fields = {'id', job.id, 'task', row[2], 'queue', job.queue, 'tenant', row[4],
                  'state', r.target, 'payload', payload, 'priority', row[5], 'pk', row[6],
                  'attempts', '0', 'max_attempts', row[7], 'created_at', NOW_S,
                  'run_at', int(run_at), 'meta', row[13], 'rk', member, 'ev', job.ev,
                  'lane', job.lane}
  if row[8] ~= NULL then fields[#fields + 1] = 'timeout'; fields[#fields + 1] = row[8] end
  if row[12] ~= NULL then fields[#fields + 1] = 'batch_id'; fields[#fields + 1] = row[12] end
  if row[11] ~= NULL then
    fields[#fields + 1] = 'unique_key'; fields[#fields + 1] = row[11]
    fields[#fields + 1] = 'uf'; fields[#fields + 1] = row[16]
    redis.call('HSET', UNIQUE, row[16], job.id)
  end
  redis.call('HSET', P .. ':job:' .. job.id, unpack(fields))
  if not lanes[job.lane] then
    lanes[job.lane] = true
    redis.call('SADD', LANES, job.lane)
  end
  move(job, r.target)
  emit_all(job, r, '{}')
  if run_at <= NOW then woken[job.queue] = (woken[job.queue] or 0) + 1 end
  return {1, NOW_S, int(run_at), r.target}
end

local function existing(id)
  local fields = fetch(id)
  table.insert(fields, 1, 0)
  return fields
end

for i, row in ipairs(rows) do
  local other = nil
  if redis.call('EXISTS', P .. ':job:' .. row[1]) == 1 then
    other = row[1]
  elseif row[11] ~= NULL then
    other = live_unique(row[16])
  end
  if other then
    out[i] = existing(other)
  else
    out[i] = store(row, ARGV[5 + i])
  end
end
for queue, n in pairs(woken) do
  signal(queue, n)
end
return out
