-- Pause leasing in a scope; a scope already paused keeps its first time. A new
-- pause appends a `paused` event.
-- ARGV: prefix, scope (codec.pause_field), the event's tenant (JSON), its data.
-- Returns the time the pause began, in microseconds.
local k = P .. ':pauses'
if redis.call('HSETNX', k, ARGV[2], NOW_S) == 1 then
  emit_control(ARGV[3], 'paused', ARGV[4])
end
return redis.call('HGET', k, ARGV[2])
