-- Delete ended jobs in the given states that finished before a cutoff, with
-- their events (list and feed), index entries (batch ones too) and unique keys.
-- The first chunk (offset 0) also ages out the events of no job (pauses,
-- finished batches) older than the cutoff.
-- ARGV: prefix, cutoff_us (exclusive), states, offset, limit.
-- Returns {deleted, kept, scanned}: the caller moves its offset past the kept.
local cutoff, wanted = ARGV[2], set_of(ARGV[3])
local offset, limit = tonumber(ARGV[4]), tonumber(ARGV[5])
local ids = redis.call('ZRANGEBYSCORE', FINISHED, '-inf', '(' .. cutoff, 'LIMIT', offset, limit)
local deleted, kept = 0, 0

-- The all-time count the job leaves behind: {p}:stats field
-- "<UTC day since 1970> <state> <lane>", bumped before the job goes.
local function tally(job)
  local fin = redis.call('HGET', P .. ':job:' .. job.id, 'finished_at')
  if fin then
    local day = int(math.floor(tonumber(fin) / 86400000000))
    redis.call('HINCRBY', P .. ':stats', day .. ' ' .. job.state .. ' ' .. job.lane, 1)
  end
end

local function purge(job)
  tally(job)
  local evkey = P .. ':events:' .. job.id
  local stream_ids = {}
  for _, ev in ipairs(redis.call('LRANGE', evkey, 0, -1)) do
    stream_ids[#stream_ids + 1] = string.match(ev, '^{"id":(%d+)') .. '-0'
  end
  if #stream_ids > 0 then redis.call('XDEL', FEED, unpack(stream_ids)) end
  redis.call('DEL', evkey, P .. ':job:' .. job.id)
  redis.call('ZREM', FINISHED, job.id)
  redis.call('ZREM', P .. ':idx:' .. job.state .. ':' .. job.lane, job.id)
  if job.batch then
    redis.call('ZREM', P .. ':bidx:' .. job.state .. ':' .. job.batch, job.id)
  end
  if job.uf and redis.call('HGET', P .. ':unique', job.uf) == job.id then
    redis.call('HDEL', P .. ':unique', job.uf)
  end
end

if offset == 0 then
  local old = redis.call('ZRANGEBYSCORE', P .. ':control', '-inf', '(' .. cutoff, 'LIMIT', 0, limit)
  if #old > 0 then
    redis.call('XDEL', FEED, unpack(old))
    redis.call('ZREM', P .. ':control', unpack(old))
  end
end

for _, id in ipairs(ids) do
  local job = load(id)
  if not job then
    redis.call('ZREM', FINISHED, id)
  elseif wanted[job.state] then
    purge(job)
    deleted = deleted + 1
  else
    kept = kept + 1
  end
end
return {deleted, kept, #ids}
