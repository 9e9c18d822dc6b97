-- The jobs and their events. `{schema}` is replaced by the quoted schema name.
--
-- The state literals in the partial indexes below mirror offload.lifecycle:
-- `ready` holds the START sources, `live_unique` every state that is not ended,
-- `expiring` the sources of EXPIRE. The backend checks at import time that the
-- lifecycle still agrees, so a change there cannot silently bypass an index.

CREATE TABLE {schema}.jobs (
    id               uuid PRIMARY KEY,
    task             text NOT NULL,
    queue            text NOT NULL,
    tenant           text NOT NULL,
    state            text NOT NULL,
    payload          bytea NOT NULL,
    priority         integer NOT NULL DEFAULT 0,
    attempts         integer NOT NULL DEFAULT 0,
    max_attempts     integer NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    run_at           timestamptz NOT NULL,
    timeout          double precision,
    started_at       timestamptz,
    finished_at      timestamptz,
    result           bytea,
    error            jsonb,
    checkpoint       bytea,
    progress         double precision,
    progress_message text,
    unique_key       text,
    batch_id         text,
    worker_id        text,
    lease_token      text,
    lease_expires_at timestamptz,
    cancel_requested boolean NOT NULL DEFAULT false,
    meta             jsonb NOT NULL DEFAULT '{}',
    CONSTRAINT jobs_state_known CHECK (
        state IN ('scheduled', 'queued', 'running', 'succeeded', 'cancelled', 'dead')
    ),
    -- A lease exists exactly while a job runs: a statement that forgot to drop
    -- or issue one is refused by the database instead of corrupting the job.
    CONSTRAINT jobs_lease_iff_running CHECK (
        (state = 'running') = (lease_token IS NOT NULL AND lease_expires_at IS NOT NULL)
    )
);

-- Leasing walks this index per queue in lease order and stops at the batch size.
CREATE INDEX jobs_ready ON {schema}.jobs (queue, priority DESC, run_at, id)
    WHERE state IN ('queued', 'scheduled');

CREATE UNIQUE INDEX jobs_live_unique ON {schema}.jobs (tenant, unique_key)
    WHERE unique_key IS NOT NULL AND state IN ('scheduled', 'queued', 'running');

CREATE INDEX jobs_expiring ON {schema}.jobs (lease_expires_at) WHERE state = 'running';

CREATE INDEX jobs_tenant_id ON {schema}.jobs (tenant, id);

CREATE INDEX jobs_finished ON {schema}.jobs (finished_at) WHERE finished_at IS NOT NULL;

-- No foreign key to jobs: events are written on every transition and a key check
-- per row would cost more than it protects; job_purge deletes both together.
CREATE TABLE {schema}.events (
    id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id uuid NOT NULL,
    tenant text NOT NULL,
    kind   text NOT NULL,
    at     timestamptz NOT NULL DEFAULT now(),
    data   jsonb NOT NULL DEFAULT '{}'
);

CREATE INDEX events_job ON {schema}.events (job_id, id);

CREATE INDEX events_tenant ON {schema}.events (tenant, id);
