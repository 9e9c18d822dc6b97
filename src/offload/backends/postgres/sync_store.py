"""Enqueues from a producer's own thread, with no event loop in between.

A sync ``task.enqueue`` otherwise hands its coroutine to the bridge loop's
thread (``offload._sync``) and waits for the answer: two thread switches on
top of the round trip. Here the calling thread runs the backend's own enqueue
algorithm on a blocking connection (``enqueue.enqueue_sync``, the one the
transactional outbox uses), from a pool of the store's own, sized and checked
like the backend's: a connection whose socket shows that the server hung up is
found before use and the pool swept, and a call that still meets a lost
connection is made once more (enqueue is idempotent by job id).

The schema is the backend's: the app opens its backend, which migrates it,
before the first sync enqueue (``App._direct_store``).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from offload.backends.postgres._url import PostgresOptions
from offload.backends.postgres.backend import has_input
from offload.backends.postgres.enqueue import enqueue_sync
from offload.errors import BackendError
from offload.job import Job, NewJob

Conn = psycopg.Connection[Any]


class PostgresThreadStore:
    def __init__(self, options: PostgresOptions, where: str) -> None:
        self._options, self._where = options, where
        self._pool: ConnectionPool[Conn] | None = None
        self._making = threading.Lock()

    def enqueue_many(self, jobs: Sequence[NewJob]) -> list[Job]:
        if not jobs:
            return []
        try:
            return self._attempt(self._ready(), jobs)
        except psycopg.OperationalError:
            pass  # a lost connection, or the pool closed by another thread meanwhile
        pool = self._ready()
        with contextlib.suppress(psycopg.Error):
            pool.check()
        try:
            return self._attempt(pool, jobs)
        except psycopg.OperationalError as exc:
            raise BackendError("job_enqueue_many: connection to PostgreSQL lost twice") from exc

    def close(self) -> None:
        with self._making:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()

    def _attempt(self, pool: ConnectionPool[Conn], jobs: Sequence[NewJob]) -> list[Job]:
        try:
            with pool.connection() as conn:
                return enqueue_sync(conn, jobs, self._options.schema)
        except PoolTimeout as exc:
            raise BackendError(f"job_enqueue_many: no PostgreSQL connection ({exc})") from exc
        except psycopg.OperationalError:
            raise
        except psycopg.Error as exc:
            raise BackendError(f"job_enqueue_many: {exc}") from exc

    def _ready(self) -> ConnectionPool[Conn]:
        with self._making:
            if self._pool is None:
                o = self._options
                pool: ConnectionPool[Conn] = ConnectionPool(
                    o.conninfo, min_size=1, max_size=o.pool_max, timeout=o.pool_timeout,
                    kwargs={"autocommit": True}, configure=_configure, check=self._check,
                    open=False, name=f"offload-{o.schema}-sync",
                )  # fmt: skip
                try:
                    pool.open(wait=True, timeout=o.pool_timeout)
                except (psycopg.Error, PoolTimeout) as exc:
                    pool.close()
                    raise BackendError(
                        f"cannot open PostgreSQL backend {self._where}: {exc}"
                    ) from exc
                self._pool = pool
            return self._pool

    def _check(self, conn: Conn) -> None:
        if not has_input(conn):
            return
        try:
            ConnectionPool.check_connection(conn)
        except psycopg.Error:
            if self._pool is not None:
                self._pool.check()
            raise


def _configure(conn: Conn) -> None:
    # Timestamps come back as aware datetimes in the session zone: pin it to UTC.
    conn.execute(b"SET TIME ZONE 'UTC'")
