"""offload itself, on the backend named by ``PEERS_OFFLOAD_URL`` (for
``azure://``, the account of ``AZURE_STORAGE_CONNECTION_STRING``).

Installed editable from this repository into its own virtualenv, so it is
measured the same way as every peer. The worker is ``offload.worker.Worker`` with
the same slots as the async peers; bulk enqueue is ``enqueue_many_async``.

One by one is the sync ``enqueue``, the call a Django or Flask view makes and
the one the sync peers (Huey, RQ, Celery, Dramatiq) are measured with; on
SQLite and a single Redis server it stores from the calling thread. Set
``PEERS_OFFLOAD_ENQUEUE=async`` to time ``enqueue_async`` awaited on the loop
instead; ``bench/enqueue_cost.py`` times both side by side.
"""

from __future__ import annotations

import importlib.metadata
import os
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from adapters._common import (
    FAST_CONCURRENCY,
    IO_CONCURRENCY,
    Kind,
    Peer,
    ajob_done,
    flush_redis,
)
from offload import App
from offload.worker import Worker

URL = os.environ.get("PEERS_OFFLOAD_URL", "sqlite:////tmp/offload-peers.db")
app = App(URL)
CONCURRENCY = {"fast": FAST_CONCURRENCY, "io": IO_CONCURRENCY}
ENQUEUE_API = os.environ.get("PEERS_OFFLOAD_ENQUEUE", "sync")


@app.task(name="peers.job", max_attempts=1)
async def job(kind: str, sent: float) -> None:
    await ajob_done(kind, sent)


def enqueue_one(kind: Kind, sent: float) -> None:
    job.enqueue(kind, sent)


async def enqueue_one_async(kind: Kind, sent: float) -> None:
    await job.enqueue_async(kind, sent)


async def enqueue_bulk(kind: Kind, sents: list[float]) -> None:
    await job.enqueue_many_async([(kind, s) for s in sents])


def reset() -> None:
    """Start from an empty store: a new SQLite file, a dropped PostgreSQL schema
    (in the bench's own database), or the bench's own Redis database."""
    flush_redis()
    parts = urlsplit(URL)
    if parts.scheme == "sqlite":
        for suffix in ("", "-wal", "-shm"):
            Path(parts.path[1:] + suffix).unlink(missing_ok=True)
    elif parts.scheme.startswith("postgres"):
        import psycopg

        schema = parse_qs(parts.query).get("schema", ["offload"])[0]
        dsn = parts._replace(query="").geturl()
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    elif parts.scheme == "azure":
        _drop_azure(parse_qs(parts.query).get("prefix", ["offload"])[0])


def _drop_azure(prefix: str) -> None:
    """Delete the prefix's tables and Storage queues (Azurite drops them at once)."""
    from azure.data.tables import TableServiceClient
    from azure.storage.queue import QueueServiceClient

    conn = os.environ["AZURE_STORAGE_CONNECTION_STRING"]
    tables = TableServiceClient.from_connection_string(conn)
    for table in tables.query_tables(f"TableName ge '{prefix}' and TableName lt '{prefix}~'"):
        tables.delete_table(table.name)
    queues = QueueServiceClient.from_connection_string(conn)
    for queue in queues.list_queues(name_starts_with=prefix + "-"):
        queues.delete_queue(queue.name)


async def run_worker(mode: str) -> None:
    worker = Worker(app, ["default"], concurrency=CONCURRENCY[mode])
    await worker.run()


async def _setup() -> None:
    await app.backend()


PEER = Peer(
    name="offload",
    version=importlib.metadata.version("offload"),
    enqueue_one=enqueue_one_async if ENQUEUE_API == "async" else enqueue_one,
    enqueue_bulk=enqueue_bulk,
    run_worker=run_worker,
    reset=reset,
    setup=_setup,
    settings={
        m: {"concurrency": n, "queues": ["default"], "enqueue_one": ENQUEUE_API}
        for m, n in CONCURRENCY.items()
    },
)
