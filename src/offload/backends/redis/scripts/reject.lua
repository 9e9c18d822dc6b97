-- REJECT: dead without having run (unknown task, undecodable payload).
-- ARGV: prefix, reject rule, job id, token, error JSON, event data JSON.
return transition(rule(ARGV[2]), ARGV[3], ARGV[4], {error = ARGV[5], data = ARGV[6]})
