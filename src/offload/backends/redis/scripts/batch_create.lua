-- Store a batch unless its id exists (then the stored one stands).
-- ARGV: prefix, batch id, tenant, then the caller's fields as (name, value)
-- pairs (codec.new_batch_fields).
-- Returns 1 when stored, 0 when the id existed.
local id, tenant = ARGV[2], ARGV[3]
local k = P .. ':batch:' .. id
if redis.call('EXISTS', k) == 1 then return 0 end
local fields = {'id', id, 'tenant', tenant, 'created_at', NOW_S, 'continuation_ids', '[]'}
for i = 4, #ARGV do
  fields[#fields + 1] = ARGV[i]
end
redis.call('HSET', k, unpack(fields))
-- Listing indexes ordered by id text (time-ordered ids): all and unfinished,
-- each for every tenant and for this one.
for _, which in ipairs({'all', 'open'}) do
  redis.call('ZADD', P .. ':batches:' .. which, 0, id)
  redis.call('ZADD', P .. ':batches:' .. which .. ':' .. tenant, 0, id)
end
return 1
