"""Enqueues from a producer's own thread, with no event loop in between.

A sync ``task.enqueue`` otherwise hands its coroutine to the bridge loop
(``offload._sync``), whose backend hands the write to its connection's thread:
three threads and four switches for an insert that takes SQLite about 60 µs
(322 µs a call against 86 µs written from the caller's thread, measured one
after another on a quiet machine). Here the calling thread writes on a
connection of the store's own, in the same transaction as the backend's
(``jobs.enqueue_many``), and wakes this process's waiting workers as the
backend does; workers of other processes see the commit in the WAL index
(``wake``).

One connection, used by one thread at a time: SQLite lets one writer in at a
time anyway, so threads waiting on the lock wait no longer than they would on
the file's write lock, and the store never leaks a connection per thread.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence

from offload.backends.sqlite import jobs as ops
from offload.backends.sqlite import wake
from offload.backends.sqlite._connection import connect, transaction
from offload.backends.sqlite._url import SQLiteOptions
from offload.errors import BackendError
from offload.job import Job, NewJob


class SQLiteThreadStore:
    def __init__(self, options: SQLiteOptions) -> None:
        self._options = options
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def enqueue_many(self, jobs: Sequence[NewJob]) -> list[Job]:
        if not jobs:
            return []
        with self._lock:
            try:
                if self._conn is None:
                    self._conn = connect(self._options, any_thread=True)
                with transaction(self._conn):
                    stored = ops.enqueue_many(self._conn, jobs)
            except (sqlite3.Error, OSError) as exc:
                raise BackendError(
                    f"SQLite enqueue_many on {self._options.path} failed: {exc}"
                ) from exc
        queues = {job.queue for job in stored if not job.duplicate}
        if queues:
            wake.notify(self._options.path, queues)
        return stored

    def close(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
