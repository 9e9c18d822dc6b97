-- SNOOZE: a limit refused the start, so the job waits again, due after `delay`,
-- with the attempt given back since it never ran.
-- ARGV: prefix, snooze rule, job id, token, delay_us, event data JSON.
-- Returns the job's fields, or false when refused.
return transition(rule(ARGV[2]), ARGV[3], ARGV[4], {after = tonumber(ARGV[5]), data = ARGV[6]})
