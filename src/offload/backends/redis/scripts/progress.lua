-- Store a running job's checkpoint and progress; a progress value appends an event.
-- ARGV: prefix, leased state, progress event kind, job id, token, has checkpoint,
-- checkpoint, progress or "", message ("=" + text, or "" for none), event data JSON.
local job = load(ARGV[4])
if not job or job.state ~= ARGV[2] or job.token ~= ARGV[5] then return 0 end
local k = P .. ':job:' .. job.id
if ARGV[6] == '1' then redis.call('HSET', k, 'checkpoint', ARGV[7]) end
if ARGV[8] ~= '' then
  redis.call('HSET', k, 'progress', ARGV[8])
  if ARGV[9] == '' then
    redis.call('HDEL', k, 'progress_message')
  else
    redis.call('HSET', k, 'progress_message', string.sub(ARGV[9], 2))
  end
  emit(job, ARGV[3], ARGV[10])
end
return 1
