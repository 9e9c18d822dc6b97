-- Every statement the SQLite backend runs, one `-- name:` block each.
--
-- Tokens in braces are filled in once per process when the file is loaded:
--   {job_columns}      the columns of a job, in the order _rows.job reads them
--   {schedule_columns} the same for a schedule (_rows.schedule)
--   {worker_columns}   the same for a worker (_rows.worker)
--   {batch_select}     the batch_select block below
--   {LEASABLE}, {RUNNING}, {ENDED}
--                      state lists from offload.lifecycle: the states START
--                      leaves, the running state, the ended states
--   {START_EFFECTS}    the SET list of START, rendered from its effect fields
--   {START_STAMPS}     the JSON object of START's stamps (see _sql.stamps)
--   {effects}, {sources}, {fence}, {guard}, {returning}, {stamps}
--                      job_transition's parts, rendered per Transition from its
--                      fields (see _sql.transition)
--   {ENQUEUE_KINDS}    per job inserted, the kinds of the events its enqueue
--                      transition records, from offload.lifecycle
--   {where}            the filters in use of a listing
-- Named parameters are bound by the backend: :now is the backend's clock and
-- :span the seconds it was handed (a lease's length, a delay), both as integer
-- microseconds; :worker the worker whose lease a transition grants or takes away.

-- jobs ---------------------------------------------------------------------------

-- name: job_insert
-- OR IGNORE: an id that is already stored is not written again (a retried
-- enqueue is then harmless); the caller gets the stored job back.
INSERT OR IGNORE INTO jobs (
    id, task, queue, tenant, state, payload, priority, attempts, max_attempts,
    created_at, run_at, timeout, unique_key, batch_id, meta
) VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?, ?, ?)

-- name: job_last_rowid
SELECT coalesce(max(rowid), 0) FROM jobs

-- name: job_ids_after
SELECT id FROM jobs WHERE rowid > ?

-- name: job_enqueue_events
-- One INSERT … SELECT appends the events of every job inserted after rowid
-- :last, each job's kinds in order: SQLite builds these rows faster than Python
-- can bind them, which matters on the bulk enqueue path.
INSERT INTO events (job_id, tenant, kind, at)
SELECT id, tenant, kind, created_at FROM ({ENQUEUE_KINDS})
WHERE kind IS NOT NULL ORDER BY r, p

-- name: job_select
SELECT {job_columns} FROM jobs WHERE id = ? AND tenant = COALESCE(?, tenant)

-- name: job_select_live_unique
SELECT {job_columns} FROM jobs
WHERE tenant = ? AND unique_key = ? AND state NOT IN {ENDED}

-- name: job_lease
-- START for up to :limit jobs of one queue, in lease order: the subquery walks
-- the leasing index, which is already in that order.
UPDATE jobs SET {START_EFFECTS}
WHERE rowid IN (
    SELECT rowid FROM jobs
    WHERE queue = :queue AND state IN {LEASABLE} AND run_at <= :now
    ORDER BY priority DESC, run_at, id LIMIT :limit
)
RETURNING {job_columns}, {START_STAMPS}

-- name: job_lease_skipping
-- job_lease while tenants of the queue are paused: the filter sits in the scan
-- of the leasing index, so paused tenants' jobs at the head of a queue are
-- stepped over instead of starving the jobs behind them.
UPDATE jobs SET {START_EFFECTS}
WHERE rowid IN (
    SELECT rowid FROM jobs
    WHERE queue = :queue AND state IN {LEASABLE} AND run_at <= :now
      AND tenant NOT IN (SELECT value FROM json_each(:paused))
    ORDER BY priority DESC, run_at, id LIMIT :limit
)
RETURNING {job_columns}, {START_STAMPS}

-- name: job_transition
-- One guarded UPDATE per Transition: it matches only from the transition's
-- sources and, for a leased one, only under the caller's lease token.
UPDATE jobs SET {effects}
WHERE id = :id AND state IN {sources}{fence}{guard}
RETURNING {returning}, {stamps}

-- name: job_heartbeat
UPDATE jobs SET lease_expires_at = ?
WHERE id = ? AND state IN {RUNNING} AND lease_token = ?
RETURNING cancel_requested

-- name: job_progress
UPDATE jobs SET checkpoint = COALESCE(:checkpoint, checkpoint),
    progress = COALESCE(:progress, progress),
    progress_message = CASE WHEN :progress IS NULL THEN progress_message ELSE :message END
WHERE id = :id AND state IN {RUNNING} AND lease_token = :token
RETURNING tenant

-- name: job_request_cancel
-- A running job is asked once: a second request finds cancel_requested set.
UPDATE jobs SET cancel_requested = 1
WHERE id = :id AND tenant = COALESCE(:tenant, tenant)
  AND state IN {RUNNING} AND cancel_requested = 0
RETURNING {job_columns}

-- name: job_cancels
SELECT id FROM jobs
WHERE id IN (SELECT value FROM json_each(?)) AND cancel_requested = 1

-- name: job_select_expired
-- The last column is the task's dead-letter choice kept in meta (job.DISCARD_META).
SELECT id, lease_token, worker_id, attempts >= max_attempts, cancel_requested,
       COALESCE(json_extract(meta, '$.discard'), 0) FROM jobs
WHERE state IN {RUNNING} AND lease_expires_at <= ?

-- name: job_list
SELECT {job_columns} FROM jobs {where} ORDER BY id DESC LIMIT ?

-- name: job_counts
SELECT queue, state, count(*) FROM jobs GROUP BY queue, state

-- name: job_counts_of_tenant
SELECT queue, state, count(*) FROM jobs WHERE tenant = ? GROUP BY queue, state

-- name: job_purge_stats
INSERT INTO stats (tenant, queue, day, outcome, count)
SELECT tenant, queue, date(finished_at / 1000000, 'unixepoch'), state, count(*)
FROM jobs INDEXED BY jobs_finished WHERE finished_at < :before
AND state IN {ENDED} AND state IN (SELECT value FROM json_each(:states))
GROUP BY 1, 2, 3, 4
ON CONFLICT (tenant, queue, day, outcome) DO UPDATE SET count = count + excluded.count

-- name: job_stats
SELECT queue, day, outcome, count FROM stats
WHERE (:tenant IS NULL OR tenant = :tenant) AND (:queue IS NULL OR queue = :queue)
UNION ALL
SELECT queue, date(finished_at / 1000000, 'unixepoch'), state, count(*)
FROM jobs INDEXED BY jobs_finished WHERE finished_at IS NOT NULL AND state IN {ENDED}
AND (:tenant IS NULL OR tenant = :tenant) AND (:queue IS NULL OR queue = :queue)
GROUP BY 1, 2, 3

-- name: job_purge_events
DELETE FROM events WHERE job_id IN (
    SELECT id FROM jobs INDEXED BY jobs_finished WHERE finished_at < :before
    AND state IN {ENDED} AND state IN (SELECT value FROM json_each(:states))
)

-- name: control_events_purge
-- Events of no job (pauses, finished batches) are stored with job_id ''.
DELETE FROM events WHERE job_id = '' AND at < :before

-- name: job_purge
DELETE FROM jobs WHERE id IN (
    SELECT id FROM jobs INDEXED BY jobs_finished WHERE finished_at < :before
    AND state IN {ENDED} AND state IN (SELECT value FROM json_each(:states))
)

-- events -------------------------------------------------------------------------

-- name: event_insert
INSERT INTO events (job_id, tenant, kind, at, data) VALUES (?, ?, ?, ?, ?)

-- name: events_of_job
SELECT id, job_id, tenant, kind, at, data FROM events
WHERE job_id = ? AND id > ? ORDER BY id LIMIT ?

-- name: event_latest
SELECT id, job_id, tenant, kind, at, data FROM events
WHERE job_id = ? ORDER BY id DESC LIMIT 1

-- name: event_last_id
SELECT COALESCE(MAX(id), 0) FROM events

-- name: event_feed
-- tenant '' (job.EVERY_TENANT): a pause wider than one tenant, in every tenant's feed.
SELECT id, job_id, tenant, kind, at, data FROM events
WHERE id > ? AND (tenant = COALESCE(?, tenant) OR tenant = '') ORDER BY id LIMIT ?

-- name: control_event_insert
INSERT INTO events (job_id, tenant, kind, at, data) VALUES ('', ?, ?, ?, ?)

-- pauses -------------------------------------------------------------------------
-- `IS` compares NULL to NULL as equal: a scope is matched exactly, wildcards
-- included.

-- name: pause_scopes
SELECT tenant, queue FROM pauses

-- name: pause_insert
INSERT OR IGNORE INTO pauses (tenant, queue, at) VALUES (?, ?, ?)

-- name: pause_select
SELECT tenant, queue, at FROM pauses WHERE tenant IS ? AND queue IS ?

-- name: pause_delete
DELETE FROM pauses WHERE tenant IS ? AND queue IS ?

-- name: pause_list
SELECT tenant, queue, at FROM pauses

-- name: pause_list_of_tenant
SELECT tenant, queue, at FROM pauses WHERE tenant = ?

-- schedules ----------------------------------------------------------------------

-- name: schedule_upsert
-- A replace takes the rule from the caller and keeps the history of the stored row.
INSERT INTO schedules (
    id, task, payload, cron, next_run_at, tenant, timezone, queue, priority,
    max_attempts, timeout, is_unique, created_at, updated_at, meta, description
) VALUES (
    :id, :task, :payload, :cron, :next_run_at, :tenant, :timezone, :queue, :priority,
    :max_attempts, :timeout, :is_unique, :now, :now, :meta, :description
)
ON CONFLICT (tenant, id) DO UPDATE SET task = excluded.task,
    payload = excluded.payload, cron = excluded.cron, next_run_at = excluded.next_run_at,
    timezone = excluded.timezone, queue = excluded.queue, priority = excluded.priority,
    max_attempts = excluded.max_attempts, timeout = excluded.timeout,
    is_unique = excluded.is_unique, updated_at = excluded.updated_at, meta = excluded.meta,
    description = excluded.description
RETURNING {schedule_columns}

-- name: schedule_get
SELECT {schedule_columns} FROM schedules WHERE tenant = ? AND id = ?

-- name: schedule_list
SELECT {schedule_columns} FROM schedules ORDER BY tenant, id

-- name: schedule_list_of_tenant
SELECT {schedule_columns} FROM schedules WHERE tenant = ? ORDER BY tenant, id

-- name: schedule_delete
DELETE FROM schedules WHERE tenant = ? AND id = ?

-- name: schedule_due
SELECT {schedule_columns} FROM schedules WHERE next_run_at <= ?
ORDER BY next_run_at, tenant, id LIMIT ?

-- name: schedule_advance
-- Firing times are integer microseconds, so `=` is exact; the write lock held by
-- the transaction makes the compare and the set one step across processes.
UPDATE schedules SET next_run_at = :next, last_run_at = :expected,
    last_job_id = COALESCE(:job, last_job_id)
WHERE tenant = :tenant AND id = :id AND next_run_at = :expected

-- batches ------------------------------------------------------------------------

-- name: batch_select
-- The last column is the counts of the batch's jobs per state, computed in the
-- same statement so that record and counts are one snapshot.
SELECT id, tenant, created_at, name, then_jobs, finished_at, continuation_ids, meta,
    (SELECT json_group_object(state, n) FROM (
        SELECT state, count(*) AS n FROM jobs WHERE batch_id = batches.id GROUP BY state
    ))
FROM batches

-- name: batch_get
{batch_select} WHERE id = ? AND tenant = COALESCE(?, tenant)

-- name: batch_list
{batch_select} {where} ORDER BY id DESC LIMIT ?

-- name: batch_insert
INSERT OR IGNORE INTO batches (id, tenant, created_at, name, then_jobs, meta)
VALUES (?, ?, ?, ?, ?, ?)

-- name: batch_purge
-- Finished before the cutoff and no job left: the jobs went with the retention.
DELETE FROM batches
WHERE finished_at IS NOT NULL AND finished_at < ?
    AND NOT EXISTS (SELECT 1 FROM jobs WHERE jobs.batch_id = batches.id)

-- name: batch_finish
UPDATE batches SET finished_at = ?, continuation_ids = ?
WHERE id = ? AND finished_at IS NULL
RETURNING tenant

-- limits -------------------------------------------------------------------------
-- Every acquire first drops what has run out, for all keys: an indexed range
-- that is empty almost always, and what keeps both tables bounded by what is live.

-- name: slots_expire
DELETE FROM limit_slots WHERE until <= ?

-- name: slot_renew
UPDATE limit_slots SET until = ? WHERE key = ? AND holder = ?

-- name: slots_held
SELECT count(*) FROM limit_slots WHERE key = ?

-- name: slot_insert
INSERT INTO limit_slots (key, holder, until) VALUES (?, ?, ?)

-- name: slot_release
DELETE FROM limit_slots WHERE key = ? AND holder = ?

-- name: rates_expire
DELETE FROM rate_starts WHERE until <= ?

-- name: rate_forget
-- The caller's window decides, not the one a start was admitted under.
DELETE FROM rate_starts WHERE key = ? AND at <= ?

-- name: rate_admitted
SELECT count(*) FROM rate_starts WHERE key = ?

-- name: rate_insert
INSERT INTO rate_starts (key, at, until) VALUES (?, ?, ?)

-- name: rate_blocking
-- The limit-th most recent start: once it leaves the window, one more fits.
SELECT at FROM rate_starts WHERE key = ? ORDER BY at DESC LIMIT 1 OFFSET ?

-- workers ------------------------------------------------------------------------

-- name: workers_expire
DELETE FROM workers WHERE expires_at <= ?

-- name: worker_beat
INSERT OR REPLACE INTO workers ({worker_columns}, expires_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)

-- name: worker_list
SELECT {worker_columns} FROM workers WHERE expires_at > ? ORDER BY id

-- name: worker_remove
DELETE FROM workers WHERE id = ?
