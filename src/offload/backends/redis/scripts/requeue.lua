-- REQUEUE on shutdown: back to queued now, the attempt given back, checkpoint kept.
-- ARGV: prefix, requeue rule, job id, token, has checkpoint, checkpoint.
local checkpoint = nil
if ARGV[5] == '1' then checkpoint = ARGV[6] end
return transition(rule(ARGV[2]), ARGV[3], ARGV[4], {checkpoint = checkpoint})
