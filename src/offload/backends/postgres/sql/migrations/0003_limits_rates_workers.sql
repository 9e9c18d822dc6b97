-- State shared by every worker: concurrency slots, windows of admitted starts,
-- and the registry of live workers.
--
-- Slots and starts are kept as one row per key whose columns hold the whole
-- state of that key. An upsert on the key locks that one row and computes the
-- new state from its latest version, so every decision is a single statement,
-- atomic under concurrent callers, with no advisory lock and never resting on a
-- snapshot older than the lock. A key stays small: its expired entries are
-- dropped whenever it is written.

-- `holders` maps a holder (a job id) to the time its slot runs out, as a JSON
-- timestamp. `expires_at` is no earlier than the latest of those (a release
-- leaves it as it was): once it has passed, every slot of the key is free and
-- the row can go (an acquire sweeps a few such rows of other keys, and the
-- release of the last live slot deletes the row itself).
CREATE TABLE {schema}.limits (
    key        text PRIMARY KEY,
    holders    jsonb NOT NULL DEFAULT '{}',
    expires_at timestamptz NOT NULL
);

CREATE INDEX limits_expires ON {schema}.limits (expires_at);

-- `starts` holds the admitted starts that were inside the window at the last write.
-- `wait` is the answer given to the call that last wrote the row (0 when it was
-- admitted): the decision is made on the row as it stood, and RETURNING can only
-- read the row as written. `expires_at` is when the newest start leaves its
-- window; after that the row holds nothing that counts and can be swept.
CREATE TABLE {schema}.rates (
    key        text PRIMARY KEY,
    starts     timestamptz[] NOT NULL DEFAULT '{}',
    wait       double precision NOT NULL DEFAULT 0,
    expires_at timestamptz NOT NULL
);

CREATE INDEX rates_expires ON {schema}.rates (expires_at);

-- One row per worker, replaced by each beat; listed while `expires_at` (the last
-- beat plus its ttl) is in the future, ordered by id (collated "C", so by code
-- point like the other backends). Each beat deletes the rows that ran out; the
-- table holds a row per live worker and so stays tiny without an index.
CREATE TABLE {schema}.workers (
    id           text COLLATE "C" PRIMARY KEY,
    hostname     text NOT NULL,
    pid          integer NOT NULL,
    queues       text[] NOT NULL,
    concurrency  integer NOT NULL,
    started_at   timestamptz NOT NULL,
    job_ids      text[] NOT NULL,
    meta         jsonb NOT NULL DEFAULT '{}',
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL
);
