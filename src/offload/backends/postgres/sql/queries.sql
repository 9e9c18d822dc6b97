-- Every statement the PostgreSQL backend runs, one `-- name:` block each.
--
-- Tokens in braces are filled in once per schema when the file is loaded:
--   {schema}          the quoted schema name
--   {job_columns}     the columns of a job, qualified by the alias `j`, in the
--                     order the backend reads them
--   {schedule_columns}, {batch_columns}
--                     the same for a schedule (alias `s`) and a batch (alias `b`)
--   {RUNNING}         the running state
--   {fragment_x}      the text of the section named fragment_x, which two
--                     statements share; a fragment is never run on its own
--   {set:T}, {stamps:T alias}, {sources:T}, {target:T}, {events:T}
--                     what lifecycle transition T writes to row `j`, the stamps
--                     of its events read from row `alias`, the states it leaves
--                     and the one it lands in, and the events it records (see
--                     _effects.py for the forms)
-- Source states of scans are rendered as literals ({sources:T}) so the planner
-- can match them with the partial indexes; updates by id receive theirs as the
-- `sources` parameter from the same Transition, since a literal there can lure
-- the planner from the primary key to a partial index of every running job
-- (dead rows included). What a transition writes is never spelled out here: the
-- values it is handed (an error, a delay, a result, a checkpoint, the caller's
-- part of the event data) are parameters, everything else comes from T.
--
-- A transition is one statement: a guarded UPDATE, the INSERT of its events in a
-- data-modifying CTE, and where a job becomes leasable a pg_notify that the
-- final SELECT joins so that it runs (NOTIFY is delivered at commit). A leased
-- transition T is applied by the statement named `job_<T.name>`.

-- name: now
SELECT now();

-- name: job_enqueue
-- A conflict (the same id, or a live job holding the tenant's unique key) skips
-- the row without an error; the caller then fetches the job that won. Every
-- array travels in binary (the b placeholders), the cheapest to build and parse.
-- An optional column nobody in the batch set (timeouts, delays, run_ats,
-- unique keys, batch ids, metas) is sent as one NULL instead of an array of
-- them: unnest pads the shorter arrays with NULLs, read here as the default.
WITH given AS (
    SELECT g.*,
           COALESCE(g.run_at_given, now() + make_interval(secs => COALESCE(g.delay, 0)))
               AS due
    FROM unnest(
        %(ids)b::text[]::uuid[], %(tasks)b::text[], %(queues)b::text[], %(tenants)b::text[],
        %(payloads)b::bytea[], %(priorities)b::integer[], %(max_attempts)b::integer[],
        %(timeouts)b::float8[], %(delays)b::float8[], %(run_ats)b::timestamptz[],
        %(unique_keys)b::text[], %(batch_ids)b::text[], %(metas)b::text[]::jsonb[]
    ) WITH ORDINALITY AS g(id, task, queue, tenant, payload, priority, max_attempts,
                           timeout, delay, run_at_given, unique_key, batch_id, meta, ord)
), {fragment_enqueue_store}

-- name: job_enqueue_one
-- job_enqueue for a batch of one job, each column a scalar parameter: binding
-- thirteen arrays costs psycopg more CPU than the rest of a one-job enqueue
-- (choosing and running a dumper per array), and most enqueues are one job.
-- NULL reads as the default, as in job_enqueue.
WITH given AS (
    SELECT g.*,
           COALESCE(g.run_at_given, now() + make_interval(secs => COALESCE(g.delay, 0)))
               AS due
    FROM (SELECT %(id)b::text::uuid, %(task)b::text, %(queue)b::text, %(tenant)b::text,
                 %(payload)b::bytea, %(priority)b::integer, %(max_attempts)b::integer,
                 %(timeout)b::float8, %(delay)b::float8, %(run_at)b::timestamptz,
                 %(unique_key)b::text, %(batch_id)b::text, %(meta)b::text::jsonb, 1::bigint
    ) AS g(id, task, queue, tenant, payload, priority, max_attempts, timeout, delay,
           run_at_given, unique_key, batch_id, meta, ord)
), {fragment_enqueue_store}

-- name: fragment_enqueue_store
-- What job_enqueue and job_enqueue_one share once their `given` rows are read:
-- spliced into both where they name it, never run on its own.
stored AS (
    INSERT INTO {schema}.jobs AS j (
        id, task, queue, tenant, state, payload, priority, max_attempts, created_at,
        run_at, timeout, unique_key, batch_id, meta
    )
    SELECT g.id, g.task, g.queue, g.tenant,
           CASE WHEN g.due > now() THEN {target:ENQUEUE_LATER} ELSE {target:ENQUEUE} END,
           g.payload, g.priority, g.max_attempts, now(), g.due, g.timeout, g.unique_key,
           g.batch_id, COALESCE(g.meta, '{}'::jsonb)
    FROM given AS g
    ORDER BY g.ord
    ON CONFLICT DO NOTHING
    RETURNING j.id, j.tenant, j.queue, j.state, j.created_at, j.run_at,
              j.state <> {target:ENQUEUE} AS later
), recorded AS (
    INSERT INTO {schema}.events (job_id, tenant, kind, at, data)
    SELECT s.id, s.tenant, k.kind, now(), {stamps:ENQUEUE_LATER if s.later else ENQUEUE s}
    FROM stored AS s
    CROSS JOIN LATERAL unnest(
        CASE WHEN s.later THEN {events:ENQUEUE_LATER} ELSE {events:ENQUEUE} END
    ) WITH ORDINALITY AS k(kind, n)
), woken AS (
    SELECT count(pg_notify(%(channel)s, q.queue)) AS n
    FROM (SELECT DISTINCT s.queue FROM stored AS s WHERE NOT s.later) AS q
)
SELECT s.id::text, s.state, s.created_at, s.run_at FROM stored AS s, woken;

-- name: job_find_conflicts
-- The jobs that made rows of job_enqueue skip: by id, or live with the unique key.
SELECT {job_columns} FROM {schema}.jobs AS j WHERE j.id = ANY(%(ids)s::uuid[])
UNION ALL
SELECT {job_columns}
FROM {schema}.jobs AS j
JOIN unnest(%(tenants)s::text[], %(unique_keys)s::text[]) AS k(tenant, unique_key)
  ON j.tenant = k.tenant AND j.unique_key = k.unique_key
WHERE j.state <> ALL(%(ended)s::text[]);

-- name: job_lease
-- Queues are walked in the caller's order: the lateral subquery reads one queue's
-- ready index in lease order, locking rows as it goes and skipping rows other
-- workers hold, and the outer LIMIT stops the walk once the batch is full, so the
-- next queue is only read when the earlier ones had too few due jobs.
--
-- Pauses are read once per queue (the table holds a handful of rows): a pause
-- of every tenant (global or of the whole queue) skips the queue without reading
-- its index, and the paused tenants become a plain filter of the walk. The walk
-- so keeps its index order whatever the planner thinks of the pauses table, and
-- a paused tenant's jobs at the head of a queue are stepped over, not waited on.
-- `paused.tenants = '{}' OR` is there for the planner: with one tenant in the
-- table it estimates that `tenant <> ALL(<an array it cannot see>)` keeps no
-- row, and for a walk expected to find nothing a sequential scan and a sort
-- look cheapest: a whole-table read per lease (100 jobs/s with a million jobs
-- queued, bench/hosts.py). With the OR it expects rows and walks the index.
WITH picked AS (
    SELECT c.id
    FROM unnest(%(queues)s::text[]) WITH ORDINALITY AS q(name, rank)
    CROSS JOIN LATERAL (
        SELECT COALESCE(bool_or(p.tenant IS NULL), false) AS whole,
               COALESCE(array_agg(p.tenant) FILTER (WHERE p.tenant IS NOT NULL),
                        '{}'::text[]) AS tenants
        FROM {schema}.pauses AS p
        WHERE p.queue IS NULL OR p.queue = q.name
    ) AS paused
    CROSS JOIN LATERAL (
        SELECT j.id
        FROM {schema}.jobs AS j
        WHERE NOT paused.whole
          AND j.queue = q.name AND j.state IN ({sources:START}) AND j.run_at <= now()
          AND (paused.tenants = '{}' OR j.tenant <> ALL(paused.tenants))
        ORDER BY j.priority DESC, j.run_at, j.id
        LIMIT %(limit)s
        FOR UPDATE OF j SKIP LOCKED
    ) AS c
    LIMIT %(limit)s
), started AS (
    UPDATE {schema}.jobs AS j
    SET {set:START}
    FROM picked AS p
    WHERE j.id = p.id
    RETURNING {job_columns}
), recorded AS (
    INSERT INTO {schema}.events (job_id, tenant, kind, at, data)
    SELECT s.id::uuid, s.tenant, k.kind, now(), {stamps:START s}
    FROM started AS s CROSS JOIN LATERAL unnest({events:START}) WITH ORDINALITY AS k(kind, n)
)
SELECT * FROM started AS s
ORDER BY array_position(%(queues)s::text[], s.queue), s.priority DESC, s.run_at, s.id;

-- name: job_heartbeat
UPDATE {schema}.jobs AS j
SET lease_expires_at = now() + make_interval(secs => %(lease_for)s)
FROM unnest(%(ids)s::uuid[], %(tokens)s::text[]) AS g(id, token)
WHERE j.id = g.id AND j.lease_token = g.token AND j.state = '{RUNNING}'
RETURNING g.id::text, g.token, j.cancel_requested;

-- name: job_complete_many
-- The whole batch in one statement; `ord` tells the caller which items applied.
WITH given AS (
    SELECT * FROM unnest(%(ids)s::uuid[], %(tokens)s::text[], %(results)s::bytea[])
        WITH ORDINALITY AS g(id, token, result, ord)
), done AS (
    UPDATE {schema}.jobs AS j
    SET {set:SUCCEED result=g.result}
    FROM given AS g
    WHERE j.id = g.id AND j.lease_token = g.token AND j.state = ANY(%(sources)s::text[])
    RETURNING g.ord, j.id, j.tenant
), recorded AS (
    INSERT INTO {schema}.events (job_id, tenant, kind, at, data)
    SELECT d.id, d.tenant, k.kind, now(), {stamps:SUCCEED d}
    FROM done AS d CROSS JOIN LATERAL unnest({events:SUCCEED}) WITH ORDINALITY AS k(kind, n)
)
SELECT d.ord FROM done AS d;

-- name: job_fail
-- FAIL: out of attempts, the job dies with the error it raised.
{leased:FAIL data}

-- name: job_reject
-- REJECT: a job that cannot be run goes to the dead letter with the reason.
{leased:REJECT data}

-- name: job_discard
-- DISCARD: a task without dead letter: its last failure ends the job cancelled.
{leased:DISCARD data}

-- name: job_discard_rejected
-- DISCARD_REJECTED: the same for a job of such a task that could not start.
{leased:DISCARD_REJECTED data}

-- name: job_cancel_running
-- CANCEL_RUNNING: the worker confirms the cancel request it was sent.
{leased:CANCEL_RUNNING}

-- name: job_retry
-- RETRY: due again after `delay`; woken at once when that is already past.
{leased:RETRY data wake=due}

-- name: job_requeue
-- REQUEUE: shutdown hands the job back, and the attempt it used with it.
{leased:REQUEUE wake=always}

-- name: job_snooze
-- SNOOZE: a limit refused the start, so the job waits again, due after `delay`,
-- and gives back the attempt it never used; woken at once like a retry when due.
{leased:SNOOZE data wake=due}

-- name: job_cancel
-- One round trip whatever the job's state. `found` locks the job's latest
-- version, so exactly one branch applies even while a worker leases or ends
-- it: CANCEL_WAITING for a waiting job, a cancel request recorded once for a
-- running one (its worker learns of it from its next heartbeat), or nothing
-- for an ended one. The first column says which branch answered.
WITH found AS (
    SELECT {job_columns}
    FROM {schema}.jobs AS j
    WHERE j.id = %(id)s AND (%(tenant)s::text IS NULL OR j.tenant = %(tenant)s)
    FOR UPDATE OF j
), cancelled AS (
    UPDATE {schema}.jobs AS j
    SET {set:CANCEL_WAITING}
    FROM found AS f
    WHERE j.id = f.id::uuid AND f.state IN ({sources:CANCEL_WAITING})
    RETURNING {job_columns}
), asked AS (
    UPDATE {schema}.jobs AS j
    SET cancel_requested = true
    FROM found AS f
    WHERE j.id = f.id::uuid AND f.state IN ({sources:CANCEL_RUNNING}) AND NOT f.cancel_requested
    RETURNING {job_columns}
), recorded AS (
    INSERT INTO {schema}.events (job_id, tenant, kind, at, data)
    SELECT c.id::uuid, c.tenant, k.kind, now(), {stamps:CANCEL_WAITING c}
    FROM cancelled AS c
    CROSS JOIN LATERAL unnest({events:CANCEL_WAITING}) WITH ORDINALITY AS k(kind, n)
    UNION ALL
    SELECT a.id::uuid, a.tenant, %(kind)s, now(), '{}'::jsonb FROM asked AS a
)
SELECT 'cancelled', c.* FROM cancelled AS c
UNION ALL
SELECT 'requested', a.* FROM asked AS a
UNION ALL
SELECT 'found', f.* FROM found AS f
WHERE NOT EXISTS (SELECT FROM cancelled) AND NOT EXISTS (SELECT FROM asked);

-- name: job_cancels
-- Read only: the worker asks this often, so it writes nothing and takes no lock.
SELECT j.id::text
FROM {schema}.jobs AS j
WHERE j.id = ANY(%(ids)s::uuid[]) AND j.cancel_requested;


-- name: job_save_progress
-- The event (only for a progress report) carries the data the caller built.
WITH saved AS (
    UPDATE {schema}.jobs AS j
    SET checkpoint = COALESCE(%(checkpoint)s::bytea, j.checkpoint),
        progress = COALESCE(%(progress)s::float8, j.progress),
        progress_message = CASE WHEN %(progress)s::float8 IS NULL THEN j.progress_message
                                ELSE %(message)s::text END
    WHERE j.id = %(id)s AND j.state = '{RUNNING}' AND j.lease_token = %(token)s
    RETURNING j.id, j.tenant
), recorded AS (
    INSERT INTO {schema}.events (job_id, tenant, kind, at, data)
    SELECT s.id, s.tenant, %(kind)s, now(), %(data)s::jsonb
    FROM saved AS s
    WHERE %(progress)s::float8 IS NOT NULL
)
SELECT s.id::text FROM saved AS s;

-- name: job_redrive
WITH done AS (
    UPDATE {schema}.jobs AS j
    SET {set:REDRIVE}
    WHERE j.id = %(id)s AND (%(tenant)s::text IS NULL OR j.tenant = %(tenant)s)
      AND j.state = ANY(%(sources)s::text[])
    RETURNING {job_columns}
), recorded AS (
    INSERT INTO {schema}.events (job_id, tenant, kind, at, data)
    SELECT d.id::uuid, d.tenant, k.kind, now(), {stamps:REDRIVE d}
    FROM done AS d CROSS JOIN LATERAL unnest({events:REDRIVE}) WITH ORDINALITY AS k(kind, n)
    ORDER BY k.n
), woken AS (
    SELECT count(pg_notify(%(channel)s, d.queue)) AS n FROM done AS d
)
SELECT done.* FROM done, woken;

-- name: job_recover_expired_cancelled
-- EXPIRE_CANCELLED: a running job whose cancel was asked for and whose lease ran
-- out (its worker died before confirming) ends cancelled instead of running again.
-- Runs before job_recover_expired, which leaves these rows alone.
WITH expired AS (
    SELECT j.id, j.worker_id
    FROM {schema}.jobs AS j
    WHERE j.state IN ({sources:EXPIRE_CANCELLED}) AND j.lease_expires_at <= now()
      AND j.cancel_requested
    FOR UPDATE OF j SKIP LOCKED
), moved AS (
    UPDATE {schema}.jobs AS j
    SET {set:EXPIRE_CANCELLED}
    FROM expired AS e
    WHERE j.id = e.id
    RETURNING {job_columns}, e.worker_id AS prior_worker
), recorded AS (
    INSERT INTO {schema}.events (job_id, tenant, kind, at, data)
    SELECT m.id::uuid, m.tenant, k.kind, now(),
           {stamps:EXPIRE_CANCELLED m worker=m.prior_worker}
    FROM moved AS m
    CROSS JOIN LATERAL unnest({events:EXPIRE_CANCELLED}) WITH ORDINALITY AS k(kind, n)
    ORDER BY m.id, k.n
)
SELECT moved.* FROM moved;

-- name: job_recover_expired_discarded
-- EXPIRE_DISCARD: a job of a task without dead letter (meta's "discard", see
-- job.DISCARD_META) whose lease ran out on its last attempt ends cancelled, as
-- it would had that attempt raised. Runs before job_recover_expired, which
-- leaves these rows alone.
WITH expired AS (
    SELECT j.id, j.worker_id
    FROM {schema}.jobs AS j
    WHERE j.state IN ({sources:EXPIRE_DISCARD}) AND j.lease_expires_at <= now()
      AND NOT j.cancel_requested AND j.attempts >= j.max_attempts
      AND j.meta @> '{"discard": true}'
    FOR UPDATE OF j SKIP LOCKED
), moved AS (
    UPDATE {schema}.jobs AS j
    SET {set:EXPIRE_DISCARD}
    FROM expired AS e
    WHERE j.id = e.id
    RETURNING {job_columns}, e.worker_id AS prior_worker
), recorded AS (
    INSERT INTO {schema}.events (job_id, tenant, kind, at, data)
    SELECT m.id::uuid, m.tenant, k.kind, now(),
           {stamps:EXPIRE_DISCARD m worker=m.prior_worker}
    FROM moved AS m
    CROSS JOIN LATERAL unnest({events:EXPIRE_DISCARD}) WITH ORDINALITY AS k(kind, n)
    ORDER BY m.id, k.n
)
SELECT moved.* FROM moved;

-- name: job_recover_expired
-- EXPIRE, or EXPIRE_DEAD for a job on its last attempt, in one statement; rows a
-- concurrent recoverer (or a late completion) holds are left to it. The worker
-- whose lease ran out is read before the update takes it away, for the stamps.
WITH expired AS (
    SELECT j.id, j.worker_id, j.attempts >= j.max_attempts AS last
    FROM {schema}.jobs AS j
    WHERE j.state IN ({sources:EXPIRE}) AND j.lease_expires_at <= now()
      AND NOT j.cancel_requested
      AND NOT (j.attempts >= j.max_attempts AND j.meta @> '{"discard": true}')
    FOR UPDATE OF j SKIP LOCKED
), moved AS (
    UPDATE {schema}.jobs AS j
    SET {set:EXPIRE_DEAD if e.last else EXPIRE}
    FROM expired AS e
    WHERE j.id = e.id
    RETURNING {job_columns}, e.worker_id AS prior_worker, e.last
), recorded AS (
    INSERT INTO {schema}.events (job_id, tenant, kind, at, data)
    SELECT m.id::uuid, m.tenant, k.kind, now(),
           {stamps:EXPIRE_DEAD if m.last else EXPIRE m worker=m.prior_worker}
    FROM moved AS m
    CROSS JOIN LATERAL unnest(
        CASE WHEN m.last THEN {events:EXPIRE_DEAD} ELSE {events:EXPIRE} END
    ) WITH ORDINALITY AS k(kind, n)
    ORDER BY m.id, k.n
), woken AS (
    SELECT count(pg_notify(%(channel)s, q.queue)) AS n
    FROM (SELECT DISTINCT m.queue FROM moved AS m WHERE NOT m.last) AS q
)
SELECT moved.* FROM moved, woken;

-- name: job_get
SELECT {job_columns}
FROM {schema}.jobs AS j
WHERE j.id = %(id)s AND (%(tenant)s::text IS NULL OR j.tenant = %(tenant)s);

-- name: job_list
SELECT {job_columns}
FROM {schema}.jobs AS j
WHERE (%(tenant)s::text IS NULL OR j.tenant = %(tenant)s)
  AND (%(states)s::text[] IS NULL OR j.state = ANY(%(states)s::text[]))
  AND (%(queue)s::text IS NULL OR j.queue = %(queue)s)
  AND (%(task)s::text IS NULL OR j.task = %(task)s)
  AND (%(before_id)s::uuid IS NULL OR j.id < %(before_id)s::uuid)
  AND (%(batch_id)s::text IS NULL OR j.batch_id = %(batch_id)s)
ORDER BY j.id DESC
LIMIT %(limit)s;

-- name: job_counts
SELECT j.queue, j.state, count(*)
FROM {schema}.jobs AS j
WHERE (%(tenant)s::text IS NULL OR j.tenant = %(tenant)s)
GROUP BY j.queue, j.state;

-- name: job_purge
WITH gone AS (
    DELETE FROM {schema}.jobs AS j
    WHERE j.state = ANY(%(states)s::text[]) AND j.finished_at < %(before)s
    RETURNING j.id, j.tenant, j.queue, j.state, j.finished_at
), forgotten AS (
    DELETE FROM {schema}.events AS e WHERE e.job_id IN (SELECT g.id FROM gone AS g)
), forgotten_control AS (
    -- Events of no job (pauses, finished batches) go by their own age.
    DELETE FROM {schema}.events AS e WHERE e.job_id IS NULL AND e.at < %(before)s
), counted AS (
    INSERT INTO {schema}.stats AS s (tenant, queue, day, outcome, count)
    SELECT g.tenant, g.queue, (g.finished_at AT TIME ZONE 'UTC')::date, g.state, count(*)
    FROM gone AS g
    GROUP BY 1, 2, 3, 4
    ON CONFLICT (tenant, queue, day, outcome) DO UPDATE SET count = s.count + excluded.count
)
SELECT count(*) FROM gone;

-- name: job_stats
SELECT s.queue, s.day, s.outcome, s.count
FROM {schema}.stats AS s
WHERE (%(tenant)s::text IS NULL OR s.tenant = %(tenant)s)
  AND (%(queue)s::text IS NULL OR s.queue = %(queue)s)
UNION ALL
SELECT j.queue, (j.finished_at AT TIME ZONE 'UTC')::date, j.state, count(*)
FROM {schema}.jobs AS j
WHERE j.finished_at IS NOT NULL AND j.state IN ('succeeded', 'cancelled', 'dead')
  AND (%(tenant)s::text IS NULL OR j.tenant = %(tenant)s)
  AND (%(queue)s::text IS NULL OR j.queue = %(queue)s)
GROUP BY 1, 2, 3;

-- name: event_list
SELECT e.id, e.job_id::text, e.tenant, e.kind, e.at, e.data
FROM {schema}.events AS e
WHERE e.job_id = %(job_id)s AND e.id > %(after)s
ORDER BY e.id
LIMIT %(limit)s;

-- name: event_latest
SELECT e.id, e.job_id::text, e.tenant, e.kind, e.at, e.data
FROM {schema}.events AS e
WHERE e.job_id = %(job_id)s
ORDER BY e.id DESC
LIMIT 1;

-- name: event_last_id
SELECT COALESCE(MAX(id), 0) FROM {schema}.events

-- name: event_feed
SELECT e.id, e.job_id::text, e.tenant, e.kind, e.at, e.data
FROM {schema}.events AS e
-- A tenant's feed also carries the events of '' (job.EVERY_TENANT): pauses
-- wider than one tenant.
WHERE e.id > %(after)s AND (%(tenant)s::text IS NULL OR e.tenant IN (%(tenant)s, ''))
ORDER BY e.id
LIMIT %(limit)s;

-- name: control_pause
-- The no-op update makes a repeated pause return the stored row (and its time)
-- in the same statement, even when another session inserted it a moment ago.
-- A new row (xmax = 0: no earlier version was updated) appends a `paused` event.
WITH paused AS (
    INSERT INTO {schema}.pauses AS p (tenant, queue)
    VALUES (%(tenant)s::text, %(queue)s::text)
    ON CONFLICT ((COALESCE(tenant, '')), (tenant IS NULL), (COALESCE(queue, '')), (queue IS NULL))
    DO UPDATE SET at = p.at
    RETURNING p.tenant, p.queue, p.at, p.xmax = 0 AS fresh
), recorded AS (
    INSERT INTO {schema}.events (job_id, tenant, kind, at, data)
    SELECT NULL::uuid, %(event_tenant)s, 'paused', now(), %(data)s FROM paused WHERE paused.fresh
)
SELECT paused.tenant, paused.queue, paused.at FROM paused;

-- name: control_resume
-- Workers idle in wait_for_jobs are woken: with the queue's name when the scope
-- has one, else with an empty payload, which the listener takes as "every queue".
WITH lifted AS (
    DELETE FROM {schema}.pauses AS p
    WHERE p.tenant IS NOT DISTINCT FROM %(tenant)s::text
      AND p.queue IS NOT DISTINCT FROM %(queue)s::text
    RETURNING p.queue
), woken AS (
    SELECT count(pg_notify(%(channel)s, COALESCE(l.queue, ''))) AS n FROM lifted AS l
), recorded AS (
    INSERT INTO {schema}.events (job_id, tenant, kind, at, data)
    SELECT NULL::uuid, %(event_tenant)s, 'resumed', now(), %(data)s FROM lifted
)
SELECT count(*) FROM lifted, woken;

-- name: control_pauses
SELECT p.tenant, p.queue, p.at
FROM {schema}.pauses AS p
WHERE %(tenant)s::text IS NULL OR p.tenant = %(tenant)s;

-- name: limit_acquire
-- One upsert on the key's row. ON CONFLICT locks the row and evaluates the SET on
-- its latest version, so concurrent callers take turns on the row and each one
-- counts the slots the previous one left: never more than `limit` live holders.
-- Slots that ran out are dropped as the row is rewritten; a holder with a live
-- slot renews it, another takes one only while fewer than `limit` are live. The
-- row is rewritten on a refusal too, and the answer read back from it: the
-- holder is in the map exactly when it was admitted.
--
-- `swept` deletes a few rows of other keys whose slots have all run out, skipping
-- rows someone holds, so keys that are never used again do not pile up.
WITH swept AS (
    DELETE FROM {schema}.limits AS o
    WHERE o.key IN (
        SELECT s.key
        FROM {schema}.limits AS s
        WHERE s.expires_at <= now() AND s.key <> %(key)s::text
        ORDER BY s.expires_at
        LIMIT 8
        FOR UPDATE SKIP LOCKED
    )
)
INSERT INTO {schema}.limits AS l (key, holders, expires_at)
VALUES (
    %(key)s::text,
    CASE WHEN %(limit)s::integer > 0
         THEN jsonb_build_object(%(holder)s::text,
                                 now() + make_interval(secs => %(hold_for)s::float8))
         ELSE '{}'::jsonb END,
    now() + make_interval(secs => %(hold_for)s::float8)
)
ON CONFLICT (key) DO UPDATE
SET (holders, expires_at) = (
    SELECT CASE WHEN live.admitted
                THEN live.slots || jsonb_build_object(%(holder)s::text, excluded.expires_at)
                ELSE live.slots END,
           CASE WHEN live.admitted THEN GREATEST(live.others_until, excluded.expires_at)
                ELSE COALESCE(live.others_until, now()) END
    FROM (
        SELECT COALESCE(jsonb_object_agg(e.key, e.value), '{}'::jsonb) AS slots,
               max((e.value #>> '{}')::timestamptz)
                   FILTER (WHERE e.key <> %(holder)s::text) AS others_until,
               COALESCE(bool_or(e.key = %(holder)s::text), false)
                   OR count(*) < %(limit)s::integer AS admitted
        FROM jsonb_each(l.holders) AS e
        WHERE (e.value #>> '{}')::timestamptz > now()
    ) AS live
)
RETURNING l.holders ? %(holder)s::text;

-- name: limit_release
-- The release of the last live slot deletes the row; any other takes the holder
-- out of the map. The two branches exclude each other, so the row is written at
-- most once, and each re-checks the row if a concurrent acquire changed it.
WITH gone AS (
    DELETE FROM {schema}.limits AS l
    WHERE l.key = %(key)s::text AND NOT EXISTS (
        SELECT FROM jsonb_each(l.holders - %(holder)s::text) AS e
        WHERE (e.value #>> '{}')::timestamptz > now()
    )
    RETURNING l.key
)
UPDATE {schema}.limits AS l
SET holders = l.holders - %(holder)s::text
WHERE l.key = %(key)s::text AND l.holders ? %(holder)s::text
  AND NOT EXISTS (SELECT FROM gone)
RETURNING l.key;

-- name: rate_acquire
-- Like limit_acquire, one upsert that decides on the key's locked row: a start
-- is admitted while fewer than `limit` starts lie inside the window; otherwise
-- nothing is recorded and `wait` says when the oldest start that counts leaves
-- the window. The decision reads the server's clock once the row is locked
-- (`c.t`), not at statement start: callers queued on the row then record their
-- starts in the order they were admitted, and a wait never exceeds the period.
-- Starts that left the window are dropped on every write, so a row holds at
-- most `limit` of them.
WITH swept AS (
    DELETE FROM {schema}.rates AS o
    WHERE o.key IN (
        SELECT s.key
        FROM {schema}.rates AS s
        WHERE s.expires_at <= now() AND s.key <> %(key)s::text
        ORDER BY s.expires_at
        LIMIT 8
        FOR UPDATE SKIP LOCKED
    )
)
INSERT INTO {schema}.rates AS r (key, starts, wait, expires_at)
VALUES (%(key)s::text, ARRAY[now()], 0, now() + make_interval(secs => %(period)s::float8))
ON CONFLICT (key) DO UPDATE
SET (starts, wait, expires_at) = (
    SELECT CASE WHEN w.n < %(limit)s::integer THEN w.starts || c.t ELSE w.starts END,
           CASE WHEN w.n < %(limit)s::integer THEN 0
                ELSE extract(epoch FROM w.starts[w.n - %(limit)s::integer + 1]
                                        + make_interval(secs => %(period)s::float8) - c.t)
           END,
           CASE WHEN w.n < %(limit)s::integer
                THEN GREATEST(r.expires_at, c.t + make_interval(secs => %(period)s::float8))
                ELSE r.expires_at END
    FROM (SELECT clock_timestamp() AS t) AS c
    CROSS JOIN LATERAL (
        SELECT COALESCE(array_agg(s.at ORDER BY s.at), '{}'::timestamptz[]) AS starts,
               count(*)::integer AS n
        FROM unnest(r.starts) AS s(at)
        WHERE s.at > c.t - make_interval(secs => %(period)s::float8)
    ) AS w
)
RETURNING r.wait;

-- name: worker_beat
-- A beat replaces the worker's row; `swept` deletes the rows of workers whose
-- last beat ran out, skipping any another beat is writing right now.
WITH swept AS (
    DELETE FROM {schema}.workers AS o
    WHERE o.id IN (
        SELECT s.id
        FROM {schema}.workers AS s
        WHERE s.expires_at <= now() AND s.id <> %(id)s::text
        FOR UPDATE SKIP LOCKED
    )
)
INSERT INTO {schema}.workers AS w (
    id, hostname, pid, queues, concurrency, started_at, job_ids, meta, last_seen_at,
    expires_at
) VALUES (
    %(id)s::text, %(hostname)s::text, %(pid)s::integer, %(queues)s::text[],
    %(concurrency)s::integer, %(started_at)s::timestamptz, %(job_ids)s::text[],
    %(meta)s::jsonb, now(), now() + make_interval(secs => %(ttl)s::float8)
)
ON CONFLICT (id) DO UPDATE
SET hostname = excluded.hostname, pid = excluded.pid, queues = excluded.queues,
    concurrency = excluded.concurrency, started_at = excluded.started_at,
    job_ids = excluded.job_ids, meta = excluded.meta,
    last_seen_at = excluded.last_seen_at, expires_at = excluded.expires_at
RETURNING w.id;

-- name: worker_list
SELECT w.id, w.hostname, w.pid, w.queues, w.concurrency, w.started_at, w.job_ids,
       w.last_seen_at, w.meta
FROM {schema}.workers AS w
WHERE w.expires_at > now()
ORDER BY w.id;

-- name: worker_remove
DELETE FROM {schema}.workers AS w
WHERE w.id = %(id)s::text
RETURNING w.id;

-- name: schedule_upsert
-- A replace takes the new rule and keeps the row's history: created_at,
-- last_run_at and last_job_id are not in the SET list.
INSERT INTO {schema}.schedules AS s (
    tenant, id, task, payload, cron, timezone, queue, priority, max_attempts, timeout,
    unique_job, next_run_at, meta, description
) VALUES (
    %(tenant)s, %(id)s, %(task)s, %(payload)s, %(cron)s, %(timezone)s, %(queue)s,
    %(priority)s, %(max_attempts)s, %(timeout)s, %(unique_job)s,
    %(next_run_at)s::timestamptz, %(meta)s, %(description)s
)
ON CONFLICT (tenant, id) DO UPDATE
SET task = excluded.task, payload = excluded.payload, cron = excluded.cron,
    timezone = excluded.timezone, queue = excluded.queue, priority = excluded.priority,
    max_attempts = excluded.max_attempts, timeout = excluded.timeout,
    unique_job = excluded.unique_job, next_run_at = excluded.next_run_at,
    meta = excluded.meta, description = excluded.description, updated_at = now()
RETURNING {schedule_columns};

-- name: schedule_get
SELECT {schedule_columns}
FROM {schema}.schedules AS s
WHERE s.tenant = %(tenant)s AND s.id = %(id)s;

-- name: schedule_list
SELECT {schedule_columns}
FROM {schema}.schedules AS s
WHERE %(tenant)s::text IS NULL OR s.tenant = %(tenant)s
ORDER BY s.tenant, s.id;

-- name: schedule_delete
DELETE FROM {schema}.schedules AS s
WHERE s.tenant = %(tenant)s AND s.id = %(id)s
RETURNING s.id;

-- name: schedule_due
SELECT {schedule_columns}
FROM {schema}.schedules AS s
WHERE s.next_run_at <= %(before)s::timestamptz
ORDER BY s.next_run_at, s.tenant, s.id
LIMIT %(limit)s;

-- name: schedule_advance
-- The compare-and-set of a firing: of schedulers racing on one firing, the first
-- to update the row wins; the others re-check it after its commit and no longer
-- match `expected`.
UPDATE {schema}.schedules AS s
SET next_run_at = %(next_run_at)s::timestamptz,
    last_run_at = %(expected)s::timestamptz,
    last_job_id = COALESCE(%(job_id)s::text, s.last_job_id)
WHERE s.tenant = %(tenant)s AND s.id = %(id)s AND s.next_run_at = %(expected)s::timestamptz
RETURNING s.id;

-- name: batch_create
-- As for pauses, the no-op update returns the stored batch when the id exists.
-- The ids of batches are collated "C" and those on jobs are not: comparisons
-- name the jobs' collation so that the jobs_batch index serves them.
WITH stored AS (
    INSERT INTO {schema}.batches AS b (id, tenant, name, then_jobs, meta)
    VALUES (%(id)s, %(tenant)s, %(name)s::text, %(then_jobs)s::bytea, %(meta)s)
    ON CONFLICT (id) DO UPDATE SET id = b.id
    RETURNING {batch_columns}
)
SELECT b.*, COALESCE((
    SELECT jsonb_object_agg(c.state, c.n)
    FROM (SELECT j.state, count(*) AS n
          FROM {schema}.jobs AS j
          WHERE j.batch_id = b.id COLLATE "default"
          GROUP BY j.state) AS c
), '{}'::jsonb)
FROM stored AS b;

-- name: batch_get
SELECT {batch_columns}, COALESCE((
    SELECT jsonb_object_agg(c.state, c.n)
    FROM (SELECT j.state, count(*) AS n
          FROM {schema}.jobs AS j
          WHERE j.batch_id = b.id COLLATE "default"
          GROUP BY j.state) AS c
), '{}'::jsonb)
FROM {schema}.batches AS b
WHERE b.id = %(id)s AND (%(tenant)s::text IS NULL OR b.tenant = %(tenant)s);

-- name: batch_list
-- The page of batches first, then the jobs of all of them counted in one pass.
WITH picked AS (
    SELECT {batch_columns}
    FROM {schema}.batches AS b
    WHERE (%(tenant)s::text IS NULL OR b.tenant = %(tenant)s)
      AND (NOT %(unfinished)s OR b.finished_at IS NULL)
      AND (%(before_id)s::text IS NULL OR b.id < %(before_id)s)
    ORDER BY b.id DESC
    LIMIT %(limit)s
), counted AS (
    SELECT c.batch_id, jsonb_object_agg(c.state, c.n) AS counts
    FROM (SELECT j.batch_id, j.state, count(*) AS n
          FROM {schema}.jobs AS j
          WHERE j.batch_id = ANY(ARRAY(SELECT p.id COLLATE "default" FROM picked AS p))
          GROUP BY j.batch_id, j.state) AS c
    GROUP BY c.batch_id
)
SELECT p.*, COALESCE(c.counts, '{}'::jsonb)
FROM picked AS p
LEFT JOIN counted AS c ON c.batch_id = p.id COLLATE "default"
ORDER BY p.id DESC;

-- name: batch_purge
-- Finished before the cutoff and no job left: the jobs went with the retention.
WITH gone AS (
    DELETE FROM {schema}.batches AS b
    WHERE b.finished_at < %(before)s
        AND NOT EXISTS (
            SELECT FROM {schema}.jobs AS j WHERE j.batch_id = b.id COLLATE "default"
        )
    RETURNING b.id
)
SELECT count(*) FROM gone;

-- name: batch_finish
-- Once only: a second finish (or a racing one, after the first commits) finds
-- finished_at set and changes nothing.
WITH done AS (
    UPDATE {schema}.batches AS b
    SET finished_at = now(), continuation_ids = %(continuation_ids)s::text[]
    WHERE b.id = %(id)s AND b.finished_at IS NULL
    RETURNING b.id, b.tenant
), recorded AS (
    INSERT INTO {schema}.events (job_id, tenant, kind, at, data)
    SELECT NULL::uuid, d.tenant, 'batch_finished', now(), %(data)s FROM done AS d
)
SELECT done.id FROM done;

-- name: job_release
-- RELEASE a dependent whose parents have all ended: due now, its queue woken.
-- The state guard is the compare-and-set: racing releasers, one wins.
WITH done AS (
    UPDATE {schema}.jobs AS j
    SET {set:RELEASE}
    WHERE j.id = %(id)s AND j.state = ANY(%(sources)s::text[])
    RETURNING {job_columns}
), recorded AS (
    INSERT INTO {schema}.events (job_id, tenant, kind, at, data)
    SELECT d.id::uuid, d.tenant, k.kind, now(), %(data)s::jsonb || {stamps:RELEASE d}
    FROM done AS d CROSS JOIN LATERAL unnest({events:RELEASE}) WITH ORDINALITY AS k(kind, n)
    ORDER BY k.n
), woken AS (
    SELECT count(pg_notify(%(channel)s, d.queue)) AS n FROM done AS d
)
SELECT done.* FROM done, woken;

-- name: job_cancel_dependent
-- CANCEL_DEPENDENT: a parent ended dead or cancelled; the event says which.
WITH done AS (
    UPDATE {schema}.jobs AS j
    SET {set:CANCEL_DEPENDENT}
    WHERE j.id = %(id)s AND j.state = ANY(%(sources)s::text[])
    RETURNING {job_columns}
), recorded AS (
    INSERT INTO {schema}.events (job_id, tenant, kind, at, data)
    SELECT d.id::uuid, d.tenant, k.kind, now(), %(data)s::jsonb || {stamps:CANCEL_DEPENDENT d}
    FROM done AS d
    CROSS JOIN LATERAL unnest({events:CANCEL_DEPENDENT}) WITH ORDINALITY AS k(kind, n)
    ORDER BY k.n
)
SELECT done.* FROM done;
