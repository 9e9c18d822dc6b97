-- Pauses, schedules and batches.

-- A NULL tenant or queue is the wildcard of `Pause`. UNIQUE treats NULLs as
-- distinct, so the scope is made unique through expressions that tell NULL
-- apart from every string, the empty one included.
CREATE TABLE IF NOT EXISTS pauses (
    tenant TEXT,
    queue TEXT,
    at INTEGER NOT NULL
);

CREATE UNIQUE INDEX IF NOT EXISTS pauses_scope ON pauses
    (tenant IS NULL, ifnull(tenant, ''), queue IS NULL, ifnull(queue, ''));

-- `unique` and `then` are SQL keywords, hence is_unique and then_jobs.
CREATE TABLE IF NOT EXISTS schedules (
    tenant TEXT NOT NULL,
    id TEXT NOT NULL,
    task TEXT NOT NULL,
    payload BLOB NOT NULL,
    cron TEXT NOT NULL,
    next_run_at INTEGER,
    timezone TEXT NOT NULL,
    queue TEXT NOT NULL,
    priority INTEGER NOT NULL,
    max_attempts INTEGER NOT NULL,
    timeout REAL,
    is_unique INTEGER NOT NULL,
    last_run_at INTEGER,
    last_job_id TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    meta TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (tenant, id)
);

-- Schedules that fire no more stay out of the index the scheduler polls.
CREATE INDEX IF NOT EXISTS schedules_due
    ON schedules (next_run_at, tenant, id) WHERE next_run_at IS NOT NULL;

CREATE TABLE IF NOT EXISTS batches (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    name TEXT,
    then_jobs BLOB,
    finished_at INTEGER,
    continuation_ids TEXT NOT NULL DEFAULT '[]',
    meta TEXT NOT NULL DEFAULT '{}'
);

CREATE INDEX IF NOT EXISTS batches_tenant ON batches (tenant, id);

-- Counts of a batch are read from its jobs; partial, so that jobs outside any
-- batch (most of them) cost their enqueue nothing here.
CREATE INDEX IF NOT EXISTS jobs_batch
    ON jobs (batch_id, state) WHERE batch_id IS NOT NULL;
