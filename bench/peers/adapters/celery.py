"""Celery on its Redis broker.

Celery has no bulk enqueue (a ``group`` still publishes one message per task),
so only one-by-one enqueue is measured. No-op jobs run on the ``solo`` pool (one
process, no child) with a high prefetch, as Celery's optimizing guide suggests
for many short tasks; the I/O mix runs on the ``threads`` pool.
"""

from __future__ import annotations

import celery
from celery import Celery

from adapters._common import IO_CONCURRENCY, REDIS_URL, Kind, Peer, job_done

app = Celery("peers", broker=REDIS_URL)
app.conf.update(
    task_ignore_result=True,
    worker_prefetch_multiplier=64,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)

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


PEER = Peer(
    name="celery",
    version=celery.__version__,
    enqueue_one=enqueue_one,
    enqueue_bulk=None,
    run_worker=run_worker,
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
