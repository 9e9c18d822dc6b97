-- Forget a worker that stopped cleanly: its report and its expiry together.
-- ARGV: prefix, worker id.
redis.call('HDEL', WORKERS, ARGV[2])
redis.call('ZREM', WORKERS_ALIVE, ARGV[2])
return 1
