-- Record a worker's beat: its report, stamped with the server's time, and when
-- the beat runs out. Workers whose beat ran out are dropped on the way.
-- ARGV: prefix, worker id, ttl_us, report JSON (without last_seen_at).
local id = ARGV[2]
prune_workers()
redis.call('HSET', WORKERS, id, merge(ARGV[4], '{"last_seen_at":' .. NOW_S .. '}'))
redis.call('ZADD', WORKERS_ALIVE, NOW + tonumber(ARGV[3]), id)
return 1
