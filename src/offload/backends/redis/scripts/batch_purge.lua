-- Delete batches that finished before a cutoff and have no job left (their
-- jobs went with the retention), walking every batch oldest first in chunks.
-- ARGV: prefix, cutoff_us (exclusive), job states, offset, limit.
-- Returns {deleted, kept, scanned}: the caller moves its offset past the kept.
local cutoff, states = tonumber(ARGV[2]), split(ARGV[3], ',')
local offset, limit = tonumber(ARGV[4]), tonumber(ARGV[5])
local ids = redis.call('ZRANGE', P .. ':batches:all', offset, offset + limit - 1)
local deleted, kept = 0, 0

local function empty(id)
  for _, state in ipairs(states) do
    if redis.call('EXISTS', P .. ':bidx:' .. state .. ':' .. id) == 1 then return false end
  end
  return true
end

for _, id in ipairs(ids) do
  local k = P .. ':batch:' .. id
  local v = redis.call('HMGET', k, 'tenant', 'finished_at')
  if v[2] and tonumber(v[2]) < cutoff and empty(id) then
    redis.call('DEL', k)
    redis.call('ZREM', P .. ':batches:all', id)
    redis.call('ZREM', P .. ':batches:all:' .. v[1], id)
    deleted = deleted + 1
  else
    kept = kept + 1
  end
end
return {deleted, kept, #ids}
