-- RELEASE or CANCEL_DEPENDENT a dependent still waiting in scheduled; the
-- rule's sources are the compare-and-set, so of racing callers one wins.
-- ARGV: prefix, rule, job id, event data JSON.
-- Returns the job's fields, or false when it no longer waits.
return transition(rule(ARGV[2]), ARGV[3], '', {data = ARGV[4]})
