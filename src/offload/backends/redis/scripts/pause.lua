-- Pause leasing in a scope; a scope already paused keeps its first time.
-- ARGV: prefix, scope (codec.pause_field).
-- Returns the time the pause began, in microseconds.
local k = P .. ':pauses'
redis.call('HSETNX', k, ARGV[2], NOW_S)
return redis.call('HGET', k, ARGV[2])
