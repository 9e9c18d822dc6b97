"""A stand-in for autovacuum while a worker drains a PostgreSQL row.

The shared PostgreSQL server of this machine runs with ``autovacuum = off``;
every PostgreSQL job queue (procrastinate's docs, offload's) assumes the
default, on. Without it the planner never learns that a freshly created jobs
table now holds 20,000 rows, and the dead rows of finished jobs are never
reclaimed: procrastinate's fetch query then degrades with every job (68 jobs/s
in the 2026-12-01 run, against 167-557/s measured with statistics in place).
So while a worker of a PostgreSQL row runs, the harness does what autovacuum
would: ``ANALYZE`` before the worker starts, then ``VACUUM ANALYZE`` of the
row's own database every few seconds. Every PostgreSQL row gets the same.
"""

from __future__ import annotations

import threading

import psycopg

INTERVAL_S = 5.0


class Autovacuum:
    """Analyzes ``dsn`` at once, then vacuums it every ``interval`` seconds."""

    def __init__(self, dsn: str, interval: float = INTERVAL_S) -> None:
        self.dsn, self.interval = dsn, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="autovacuum", daemon=True)

    def start(self) -> None:
        self._run("ANALYZE")
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._run("VACUUM ANALYZE")

    def _run(self, statement: str) -> None:
        # A failed round is skipped, as autovacuum skips it: the measurement
        # must not die of its housekeeping.
        try:
            with psycopg.connect(self.dsn, autocommit=True) as conn:
                conn.execute(statement)  # type: ignore[arg-type]
        except psycopg.Error:
            pass
