"""The physical limit: the bare round trips a job queue cannot do without, for the
same number of "jobs", with no library in between.

Redis: ``RPUSH`` to enqueue and ``LPOP`` to take, one by one and pipelined in
hundreds. PostgreSQL: ``INSERT`` to enqueue and ``DELETE … RETURNING`` of the
oldest row (``FOR UPDATE SKIP LOCKED``, as a queue takes it) one by one, and in
statements of a hundred rows. SQLite the same way, in WAL mode with
``synchronous=NORMAL``, committing each statement. A library's enqueue and
drain rates can be read against these.
"""

from __future__ import annotations

import sqlite3
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import redis

BATCH = 100
PAYLOAD = '{"task": "noop", "args": []}'
Rates = dict[str, float]


def _rate(n: int, fn: Callable[[], Any]) -> float:
    began = time.perf_counter()
    fn()
    return n / (time.perf_counter() - began)


def _batches(n: int) -> list[int]:
    return [min(BATCH, n - i) for i in range(0, n, BATCH)]


def redis_limits(url: str, n: int) -> Rates:
    """RPUSH/LPOP one by one, then pipelined in hundreds, on the bench's database."""
    r = redis.Redis.from_url(url)
    key = "peers:raw"
    r.delete(key)

    def push_batched() -> None:
        for size in _batches(n):
            pipe = r.pipeline(transaction=False)
            for _ in range(size):
                pipe.rpush(key, PAYLOAD)
            pipe.execute()

    def pop_batched() -> None:
        for size in _batches(n):
            pipe = r.pipeline(transaction=False)
            for _ in range(size):
                pipe.lpop(key)
            pipe.execute()

    rates = {
        "enqueue_one": _rate(n, lambda: [r.rpush(key, PAYLOAD) for _ in range(n)]),
        "take_one": _rate(n, lambda: [r.lpop(key) for _ in range(n)]),
        "enqueue_batched": _rate(n, push_batched),
        "take_batched": _rate(n, pop_batched),
    }
    r.delete(key)
    return rates


PG_TAKE_ONE = """DELETE FROM raw_jobs WHERE id = (SELECT id FROM raw_jobs ORDER BY id
    LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING payload"""
PG_TAKE_MANY = """DELETE FROM raw_jobs WHERE id IN (SELECT id FROM raw_jobs ORDER BY id
    LIMIT %s FOR UPDATE SKIP LOCKED) RETURNING payload"""


def postgres_limits(dsn: str, n: int) -> Rates:
    """INSERT / DELETE … RETURNING one by one (autocommit), then a hundred rows
    per statement, in the bench's own database."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS raw_jobs")
        conn.execute("CREATE TABLE raw_jobs (id bigserial PRIMARY KEY, payload jsonb NOT NULL)")
        insert = "INSERT INTO raw_jobs (payload) VALUES (%s)"
        insert_many = "INSERT INTO raw_jobs (payload) SELECT unnest(%s::jsonb[])"

        rates = {
            "enqueue_one": _rate(n, lambda: [conn.execute(insert, (PAYLOAD,)) for _ in range(n)]),
            "take_one": _rate(n, lambda: [conn.execute(PG_TAKE_ONE).fetchone() for _ in range(n)]),
            "enqueue_batched": _rate(n, lambda: [conn.execute(insert_many, ([PAYLOAD] * s,))
                                                 for s in _batches(n)]),
            "take_batched": _rate(n, lambda: [conn.execute(PG_TAKE_MANY, (s,)).fetchall()
                                              for s in _batches(n)]),
        }  # fmt: skip
        conn.execute("DROP TABLE raw_jobs")
    return rates


SQLITE_TAKE_ONE = """DELETE FROM raw_jobs WHERE id = (SELECT min(id) FROM raw_jobs)
    RETURNING payload"""
SQLITE_TAKE_MANY = """DELETE FROM raw_jobs WHERE id IN (SELECT id FROM raw_jobs ORDER BY id
    LIMIT ?) RETURNING payload"""


def sqlite_limits(n: int) -> Rates:
    """The same on a fresh SQLite file, one transaction per statement."""
    with tempfile.TemporaryDirectory(prefix="offload-peers-raw-") as tmp:
        conn = sqlite3.connect(Path(tmp) / "raw.db", isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("CREATE TABLE raw_jobs (id INTEGER PRIMARY KEY, payload TEXT NOT NULL)")
        insert = "INSERT INTO raw_jobs (payload) VALUES (?)"

        def insert_many(size: int) -> None:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(insert, [(PAYLOAD,)] * size)
            conn.execute("COMMIT")

        rates = {
            "enqueue_one": _rate(n, lambda: [conn.execute(insert, (PAYLOAD,)) for _ in range(n)]),
            "take_one": _rate(n, lambda: [conn.execute(SQLITE_TAKE_ONE).fetchone()
                                          for _ in range(n)]),
            "enqueue_batched": _rate(n, lambda: [insert_many(s) for s in _batches(n)]),
            "take_batched": _rate(n, lambda: [conn.execute(SQLITE_TAKE_MANY, (s,)).fetchall()
                                              for s in _batches(n)]),
        }  # fmt: skip
        conn.close()
    return rates
