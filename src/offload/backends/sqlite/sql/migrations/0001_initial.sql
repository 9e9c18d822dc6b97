-- Jobs and their events.
--
-- Tokens in braces are state lists from offload.lifecycle, rendered when the
-- file is loaded: {LEASABLE} the states START leaves, {RUNNING} the running
-- state, {ENDED} the ended states. Every statement says IF NOT EXISTS, so a file
-- whose tables were made without a recorded version is completed, not refused.

CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    task TEXT NOT NULL,
    queue TEXT NOT NULL,
    tenant TEXT NOT NULL,
    state TEXT NOT NULL,
    payload BLOB NOT NULL,
    priority INTEGER NOT NULL,
    attempts INTEGER NOT NULL,
    max_attempts INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    run_at INTEGER NOT NULL,
    timeout REAL,
    started_at INTEGER,
    finished_at INTEGER,
    result BLOB,
    error TEXT,
    checkpoint BLOB,
    progress REAL,
    progress_message TEXT,
    unique_key TEXT,
    batch_id TEXT,
    worker_id TEXT,
    lease_token TEXT,
    lease_expires_at INTEGER,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    meta TEXT NOT NULL DEFAULT '{}'
);

-- Only waiting jobs are in the leasing index: it stays small however many
-- ended jobs the table keeps, and its order is the lease order.
CREATE INDEX IF NOT EXISTS jobs_lease
    ON jobs (queue, priority DESC, run_at, id) WHERE state IN {LEASABLE};

CREATE UNIQUE INDEX IF NOT EXISTS jobs_unique ON jobs (tenant, unique_key)
    WHERE unique_key IS NOT NULL AND state NOT IN {ENDED};

CREATE INDEX IF NOT EXISTS jobs_running
    ON jobs (lease_expires_at) WHERE state IN {RUNNING};

CREATE INDEX IF NOT EXISTS jobs_finished
    ON jobs (finished_at) WHERE finished_at IS NOT NULL;

-- One index serves counts (it covers queue and state) and listings by tenant
-- and state in id order. Each index costs every enqueue several per cent, so
-- listings without a tenant scan the table in id order.
CREATE INDEX IF NOT EXISTS jobs_tenant ON jobs (tenant, state, id, queue);

-- AUTOINCREMENT: an id is never reused after a purge, so a feed cursor held by
-- a dashboard never skips or repeats an event.
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT NOT NULL,
    tenant TEXT NOT NULL,
    kind TEXT NOT NULL,
    at INTEGER NOT NULL,
    data TEXT NOT NULL DEFAULT '{}'
);

CREATE INDEX IF NOT EXISTS events_job ON events (job_id, id);
