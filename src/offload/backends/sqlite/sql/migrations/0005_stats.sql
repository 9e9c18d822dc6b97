-- All-time statistics: job_purge adds the jobs it deletes here, per tenant,
-- queue, UTC day ("YYYY-MM-DD") and end state, in the same transaction as the
-- delete; job_stats reads these rows plus the ended jobs not purged yet.
CREATE TABLE IF NOT EXISTS stats (
    tenant TEXT NOT NULL,
    queue TEXT NOT NULL,
    day TEXT NOT NULL,
    outcome TEXT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (tenant, queue, day, outcome)
) WITHOUT ROWID;
