-- One chunk of the ended jobs not purged yet, counted the way purge.lua
-- counts the jobs it deletes into {p}:stats.
-- ARGV: prefix, offset, limit (positions in the finished zset).
-- Returns {scanned, field1, count1, field2, count2, ...}; a field is
-- "<UTC day since 1970> <state> <lane>".
local offset, limit = tonumber(ARGV[2]), tonumber(ARGV[3])
local ids = redis.call('ZRANGE', FINISHED, offset, offset + limit - 1)
local counts, order = {}, {}
for _, id in ipairs(ids) do
  local v = redis.call('HMGET', P .. ':job:' .. id, 'state', 'lane', 'finished_at')
  if v[1] and v[3] then
    local day = int(math.floor(tonumber(v[3]) / 86400000000))
    local field = day .. ' ' .. v[1] .. ' ' .. v[2]
    if not counts[field] then order[#order + 1] = field; counts[field] = 0 end
    counts[field] = counts[field] + 1
  end
end
local out = {#ids}
for _, field in ipairs(order) do
  out[#out + 1] = field
  out[#out + 1] = counts[field]
end
return out
