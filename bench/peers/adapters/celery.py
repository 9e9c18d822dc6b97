"""Celery on its Redis broker, or on Azure Storage Queues (kombu's
``azurestoragequeues`` transport) when ``PEERS_CELERY_BROKER=azure``, pointed at
the account of ``AZURE_STORAGE_CONNECTION_STRING`` (the bench's Azurite).

Celery has no bulk enqueue (a ``group`` still publishes one message per task),
so only one-by-one enqueue is measured. No-op jobs run on the ``solo`` pool (one
process, no child) with a high prefetch, as Celery's optimizing guide suggests
for many short tasks; the I/O mix runs on the ``threads`` pool.
"""

from __future__ import annotations

import os

import celery
from celery import Celery

from adapters._common import IO_CONCURRENCY, REDIS_URL, Kind, Peer, flush_redis, job_done

ON_AZURE = os.environ.get("PEERS_CELERY_BROKER") == "azure"


def _azure_broker() -> str:
    """kombu's form, ``azurestoragequeues://<key>@<queue endpoint>``, built from
    the connection string (kombu splits at the last ``@``, so the slashes in
    Azurite's key need no quoting; it sees the emulator in the endpoint)."""
    parts = dict(p.split("=", 1) for p in os.environ["AZURE_STORAGE_CONNECTION_STRING"]
                 .split(";") if p)  # fmt: skip
    return f"azurestoragequeues://{parts['AccountKey']}@{parts['QueueEndpoint']}"


app = Celery("peers", broker=_azure_broker() if ON_AZURE else REDIS_URL)
app.conf.update(
    task_ignore_result=True,
    worker_prefetch_multiplier=64,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)
# On Azure, kombu polls an empty Storage queue once a second (its default), as
# offload's worker does (OFFLOAD_POLL_INTERVAL=1): latency compares like for like.

FLAGS = ["--loglevel=WARNING", "--without-gossip", "--without-mingle", "--without-heartbeat"]
POOLS = {
    "fast": ["--pool=solo"],
    "io": ["--pool=threads", f"--concurrency={IO_CONCURRENCY}"],
}


@app.task(name="peers.job")
def job(kind: Kind, sent: float) -> None:
    job_done(kind, sent)


def enqueue_one(kind: Kind, sent: float) -> None:
    job.apply_async((kind, sent))


def run_worker(mode: str) -> None:
    if mode == "io":
        app.conf.worker_prefetch_multiplier = 4
    app.worker_main(["worker", *POOLS[mode], *FLAGS])


def reset() -> None:
    flush_redis()
    if ON_AZURE:
        with app.connection_for_write() as conn:
            conn.default_channel.queue_purge("celery")


PEER = Peer(
    name="celery",
    version=celery.__version__,
    enqueue_one=enqueue_one,
    enqueue_bulk=None,
    run_worker=run_worker,
    reset=reset,
    settings={
        "fast": {
            "argv": POOLS["fast"] + FLAGS,
            "worker_prefetch_multiplier": 64,
            "task_ignore_result": True,
        },
        "io": {
            "argv": POOLS["io"] + FLAGS,
            "worker_prefetch_multiplier": 4,
            "task_ignore_result": True,
        },
    },
)
