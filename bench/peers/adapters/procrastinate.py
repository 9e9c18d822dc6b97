"""procrastinate on PostgreSQL (its only broker), in its own database.

``reset`` rebuilds the schema of that database, which the harness created for
this library alone. ``batch_defer_async`` is procrastinate's bulk API (one
statement). The worker listens (LISTEN/NOTIFY), as procrastinate does by default.
The shared server runs without autovacuum, which procrastinate relies on like any
PostgreSQL application; the harness stands in for it (``housekeeping.py``).
"""

from __future__ import annotations

import importlib.metadata
import os

import psycopg
from procrastinate import App, PsycopgConnector

from adapters._common import (
    FAST_CONCURRENCY,
    IO_CONCURRENCY,
    Kind,
    Peer,
    ajob_done,
    flush_redis,
)

DSN = os.environ.get("PEERS_PROCRASTINATE_URL", "postgresql://postgres@127.0.0.1:5432/bench_pr")
app = App(connector=PsycopgConnector(conninfo=DSN))
CONCURRENCY = {"fast": FAST_CONCURRENCY, "io": IO_CONCURRENCY}


@app.task(name="peers.job", queue="peers")
async def job(kind: Kind, sent: float) -> None:
    await ajob_done(kind, sent)


async def setup() -> None:
    await app.open_async()


async def enqueue_one(kind: Kind, sent: float) -> None:
    await job.defer_async(kind=kind, sent=sent)


async def enqueue_bulk(kind: Kind, sents: list[float]) -> None:
    await job.batch_defer_async(*({"kind": kind, "sent": s} for s in sents))


async def reset() -> None:
    flush_redis()
    with psycopg.connect(DSN, autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS public CASCADE")
        conn.execute("CREATE SCHEMA public")
    async with app.open_async():
        await app.schema_manager.apply_schema_async()


async def run_worker(mode: str) -> None:
    async with app.open_async():
        await app.run_worker_async(queues=["peers"], concurrency=CONCURRENCY[mode])


PEER = Peer(
    name="procrastinate",
    version=importlib.metadata.version("procrastinate"),
    enqueue_one=enqueue_one,
    enqueue_bulk=enqueue_bulk,
    run_worker=run_worker,
    reset=reset,
    setup=setup,
    settings={m: {"concurrency": n, "listen_notify": True} for m, n in CONCURRENCY.items()},
)
