-- CANCEL_RUNNING: the worker stopped the job after a cancel request.
-- ARGV: prefix, cancel-running rule, job id, token.
return transition(rule(ARGV[2]), ARGV[3], ARGV[4], {})
