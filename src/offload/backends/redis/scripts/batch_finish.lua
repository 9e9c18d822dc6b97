-- Set a batch's finished_at and continuation jobs, once, with a
-- `batch_finished` event of the batch's tenant.
-- ARGV: prefix, batch id, continuation job ids as a JSON list, the event's data.
-- Returns 1, or 0 when the batch is unknown or already finished.
local id = ARGV[2]
local k = P .. ':batch:' .. id
local v = redis.call('HMGET', k, 'tenant', 'finished_at')
if not v[1] or v[2] then return 0 end
redis.call('HSET', k, 'finished_at', NOW_S, 'continuation_ids', ARGV[3])
redis.call('ZREM', P .. ':batches:open', id)
redis.call('ZREM', P .. ':batches:open:' .. v[1], id)
emit_control(cjson.encode(v[1]), 'batch_finished', ARGV[4])
return 1
