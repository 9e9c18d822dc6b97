-- Extend live leases; report the lost ones and those asked to cancel.
-- ARGV: prefix, leased state, lease_for_us, then (job id, token) pairs.
-- Returns {lost ids, cancel-requested ids}.
local running_state = ARGV[2]
local expires = NOW + tonumber(ARGV[3])
local expires_s = int(expires)
local lost, cancel = {}, {}
for a = 4, #ARGV, 2 do
  local id, token = ARGV[a], ARGV[a + 1]
  local k = P .. ':job:' .. id
  local v = redis.call('HMGET', k, 'state', 'lease_token', 'cancel_requested')
  if v[1] ~= running_state or v[2] ~= token then
    lost[#lost + 1] = id
  else
    redis.call('HSET', k, 'lease_expires_at', expires_s)
    redis.call('ZADD', RUNNING, expires, id)
    if v[3] == '1' then cancel[#cancel + 1] = id end
  end
end
return {lost, cancel}
