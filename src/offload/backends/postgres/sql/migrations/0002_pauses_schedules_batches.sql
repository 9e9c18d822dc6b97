-- Orchestration records: pauses, schedules and batches, plus the jobs index that
-- counts a batch's jobs and lists them.
--
-- Names and ids that the contract orders (schedules by tenant and id, batches by
-- id) are collated "C", so the database sorts them by code point, as the other
-- backends do, whatever the database's default collation.

-- A pause is one row per scope; a NULL tenant or queue means "every". A plain
-- unique constraint would let two (NULL, NULL) rows in, so uniqueness is on the
-- values together with their NULL-ness (PostgreSQL 13 has no NULLS NOT DISTINCT).
-- The table stays tiny: leasing reads it on every call.
CREATE TABLE {schema}.pauses (
    tenant text COLLATE "C",
    queue  text COLLATE "C",
    at     timestamptz NOT NULL DEFAULT now()
);

CREATE UNIQUE INDEX pauses_scope ON {schema}.pauses (
    (COALESCE(tenant, '')), (tenant IS NULL), (COALESCE(queue, '')), (queue IS NULL)
);

-- `next_run_at` is computed by the caller (the database never parses cron) and is
-- NULL once a rule fires no more. `unique_job` is Schedule.unique, renamed because
-- UNIQUE is a reserved word.
CREATE TABLE {schema}.schedules (
    tenant       text COLLATE "C" NOT NULL,
    id           text COLLATE "C" NOT NULL,
    task         text NOT NULL,
    payload      bytea NOT NULL,
    cron         text NOT NULL,
    timezone     text NOT NULL,
    queue        text NOT NULL,
    priority     integer NOT NULL,
    max_attempts integer NOT NULL,
    timeout      double precision,
    unique_job   boolean NOT NULL,
    next_run_at  timestamptz,
    last_run_at  timestamptz,
    last_job_id  text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    meta         jsonb NOT NULL DEFAULT '{}',
    PRIMARY KEY (tenant, id)
);

-- schedule_due reads this in its order and stops at the limit.
CREATE INDEX schedules_due ON {schema}.schedules (next_run_at, tenant, id)
    WHERE next_run_at IS NOT NULL;

-- A batch's counts are not stored: they are read from its jobs, so they can never
-- drift from the jobs' states. `then_jobs` is NewBatch.then (THEN is reserved).
CREATE TABLE {schema}.batches (
    id               text COLLATE "C" PRIMARY KEY,
    tenant           text NOT NULL,
    name             text,
    then_jobs        bytea,
    created_at       timestamptz NOT NULL DEFAULT now(),
    finished_at      timestamptz,
    continuation_ids text[] NOT NULL DEFAULT '{}',
    meta             jsonb NOT NULL DEFAULT '{}'
);

CREATE INDEX batches_tenant_id ON {schema}.batches (tenant, id);

CREATE INDEX batches_unfinished ON {schema}.batches (id) WHERE finished_at IS NULL;

-- Counting a batch's jobs per state and listing them newest first.
CREATE INDEX jobs_batch ON {schema}.jobs (batch_id, id) WHERE batch_id IS NOT NULL;
