-- Concurrency slots, rate windows and the worker registry: rows with an expiry
-- time on the backend's clock.

-- One row per slot held; a slot given back is deleted, one whose holder crashed
-- is deleted by the first acquire after its `until`.
CREATE TABLE IF NOT EXISTS limit_slots (
    key TEXT NOT NULL,
    holder TEXT NOT NULL,
    until INTEGER NOT NULL,
    PRIMARY KEY (key, holder)
) WITHOUT ROWID;

CREATE INDEX IF NOT EXISTS limit_slots_until ON limit_slots (until);

-- One row per admitted start. `until` is when the start leaves the window it
-- was admitted under, so the starts of a key nobody asks about again are
-- cleaned up too and the table stays as small as the open windows.
CREATE TABLE IF NOT EXISTS rate_starts (
    key TEXT NOT NULL,
    at INTEGER NOT NULL,
    until INTEGER NOT NULL
);

CREATE INDEX IF NOT EXISTS rate_starts_key ON rate_starts (key, at);

CREATE INDEX IF NOT EXISTS rate_starts_until ON rate_starts (until);

-- A handful of rows, one per live worker: scanned, never indexed.
CREATE TABLE IF NOT EXISTS workers (
    id TEXT PRIMARY KEY,
    hostname TEXT NOT NULL,
    pid INTEGER NOT NULL,
    queues TEXT NOT NULL,
    concurrency INTEGER NOT NULL,
    started_at INTEGER NOT NULL,
    job_ids TEXT NOT NULL,
    last_seen_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    meta TEXT NOT NULL DEFAULT '{}'
) WITHOUT ROWID;
