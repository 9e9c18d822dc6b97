"""Enqueue on any connection: the backend's pool, or the caller's own transaction.

``enqueue_in`` is the transactional outbox: the job rows (and their events and
the wake-up NOTIFY) are written with the caller's connection, so they commit or
roll back with the caller's own writes. A job therefore exists if and only if
the business change that asked for it exists.

Both spellings share one algorithm: insert the batch with ``ON CONFLICT DO
NOTHING``, then fetch the jobs that made rows skip (a live job with the same
unique key, or the same id sent again by a retried call), which are returned in
place of the jobs asked for, marked ``duplicate``. A conflicting job that ended
in between frees its key, so the rows still unresolved are inserted again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import psycopg

from offload import lifecycle as lc
from offload.backends.postgres import _rows, _sql
from offload.errors import BackendError
from offload.job import Job, NewJob

_ROUNDS = 5
"""Insert rounds before giving up: each further round needs a conflicting job
to end between two statements, so more than a couple means something is wrong."""


def insert(jobs: Sequence[NewJob], schema: str) -> tuple[bytes, dict[str, Any]]:
    """The statement storing ``jobs`` and its parameters: scalars for one job,
    column arrays for more (see the two statements in queries.sql)."""
    q = _sql.queries(schema)
    if len(jobs) == 1:
        params = _rows.enqueue_one_params(jobs[0])
        return q["job_enqueue_one"], params | {"channel": _sql.channel(schema)}
    return q["job_enqueue"], _rows.enqueue_params(jobs) | {"channel": _sql.channel(schema)}


def conflict_params(jobs: Sequence[NewJob]) -> dict[str, Any]:
    keyed = [j for j in jobs if j.unique_key is not None]
    return {
        "ids": [j.id for j in jobs],
        "tenants": [j.tenant for j in keyed],
        "unique_keys": [j.unique_key for j in keyed],
        "ended": [s.value for s in lc.ENDED],
    }


class _Resolver:
    """Collects the stored job for each position of the caller's batch."""

    def __init__(self, jobs: Sequence[NewJob]) -> None:
        self.jobs = jobs
        self.found: list[Job | None] = [None] * len(jobs)
        self.pending = list(range(len(jobs)))

    def batch(self) -> list[NewJob]:
        return [self.jobs[i] for i in self.pending]

    def inserted(self, rows: list[_rows.Row]) -> None:
        """A row answers the first position of its id; a later position of the
        same id stays pending, and the conflict lookup returns it as that job,
        marked ``duplicate`` (as a second call would)."""
        by_id = {row[0]: row for row in rows}
        for i in self.pending:
            row = by_id.pop(self.jobs[i].id, None)
            if row is not None:
                self.found[i] = _rows.stored(self.jobs[i], row)
        self._settle()

    def conflicting(self, rows: list[_rows.Row]) -> None:
        by_id: dict[str, Job] = {}
        by_key: dict[tuple[str, str | None], Job] = {}
        for job in map(_rows.job, rows):
            by_id[job.id] = job
            if job.unique_key is not None and not job.ended:
                by_key[(job.tenant, job.unique_key)] = job
        for i in self.pending:
            new = self.jobs[i]
            existing = by_id.get(new.id) or by_key.get((new.tenant, new.unique_key))
            if existing is not None:
                self.found[i] = replace(existing, duplicate=True)
        self._settle()

    def _settle(self) -> None:
        self.pending = [i for i in self.pending if self.found[i] is None]

    def result(self) -> list[Job]:
        if self.pending:
            raise BackendError(f"could not store {len(self.pending)} job(s) after {_ROUNDS} rounds")
        return [job for job in self.found if job is not None]


async def enqueue_async(
    conn: psycopg.AsyncConnection[Any], jobs: Sequence[NewJob], schema: str
) -> list[Job]:
    """The enqueue algorithm on an async connection, in whatever transaction it is."""
    q = _sql.queries(schema)
    found = _Resolver(jobs)
    for _ in range(_ROUNDS):
        if not found.pending:
            break
        cur = await conn.execute(*insert(found.batch(), schema), binary=True)
        found.inserted(await cur.fetchall())
        if found.pending:
            cur = await conn.execute(q["job_find_conflicts"], conflict_params(found.batch()),
                                     binary=True)  # fmt: skip
            found.conflicting(await cur.fetchall())
    return found.result()


def enqueue_sync(conn: psycopg.Connection[Any], jobs: Sequence[NewJob], schema: str) -> list[Job]:
    """``enqueue_async`` for a blocking connection (Django, plain scripts)."""
    q = _sql.queries(schema)
    found = _Resolver(jobs)
    for _ in range(_ROUNDS):
        if not found.pending:
            break
        cur = conn.execute(*insert(found.batch(), schema), binary=True)
        found.inserted(cur.fetchall())
        if found.pending:
            cur = conn.execute(q["job_find_conflicts"], conflict_params(found.batch()),
                               binary=True)  # fmt: skip
            found.conflicting(cur.fetchall())
    return found.result()


async def enqueue_in(
    conn: psycopg.AsyncConnection[Any], jobs: Sequence[NewJob], schema: str = "offload"
) -> list[Job]:
    """Enqueue ``jobs`` inside the caller's transaction on ``conn``.

    Nothing is committed here: the jobs become visible to workers, and the
    wake-up notification is delivered, when the caller commits; a rollback
    leaves no trace. The schema must already be migrated (``migrate``). Build
    the jobs with ``task.new_job(args, kwargs)``; enqueue middleware does not
    run on this path, because it belongs to the App and this call bypasses it.
    """
    return await enqueue_async(conn, jobs, schema)


def enqueue_in_sync(
    conn: psycopg.Connection[Any], jobs: Sequence[NewJob], schema: str = "offload"
) -> list[Job]:
    """``enqueue_in`` for a blocking ``psycopg.Connection`` (Django's, for one)."""
    return enqueue_sync(conn, jobs, schema)
