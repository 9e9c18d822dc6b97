-- RETRY after retry_in, or FAIL (dead) when there is no retry_in.
-- ARGV: prefix, rule (retry or fail), job id, token, error JSON, event data
-- JSON, retry_in_us or "".
-- Returns the job's fields, or false when refused.
return transition(rule(ARGV[2]), ARGV[3], ARGV[4],
                  {error = ARGV[5], data = ARGV[6], after = tonumber(ARGV[7])})
