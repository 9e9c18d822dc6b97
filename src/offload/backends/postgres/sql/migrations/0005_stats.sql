-- All-time statistics: job_purge adds the jobs it deletes here, per tenant,
-- queue, UTC day and end state, in the same statement as the delete; job_stats
-- reads these rows plus the ended jobs not purged yet. Completions write
-- nothing here, so the hot path gains no contended counter row.
CREATE TABLE IF NOT EXISTS {schema}.stats (
    tenant  text NOT NULL,
    queue   text NOT NULL,
    day     date NOT NULL,
    outcome text NOT NULL,
    count   bigint NOT NULL,
    PRIMARY KEY (tenant, queue, day, outcome)
);
