"""Huey on Redis (``RedisHuey``, blocking reads), thread workers.

Huey has no bulk enqueue. Results are off: the jobs return nothing and the other
libraries keep no results either. The I/O mix uses thread workers, which huey's
docs name (with greenlets) for I/O-bound tasks.
"""

from __future__ import annotations

import importlib.metadata

from huey import RedisHuey

from adapters._common import IO_CONCURRENCY, REDIS_URL, Kind, Peer, job_done

huey = RedisHuey("peers", url=REDIS_URL, results=False)
WORKERS = {"fast": 4, "io": IO_CONCURRENCY}


@huey.task(name="peers.job")
def job(kind: Kind, sent: float) -> None:
    job_done(kind, sent)


def enqueue_one(kind: Kind, sent: float) -> None:
    job(kind, sent)


def run_worker(mode: str) -> None:
    consumer = huey.create_consumer(workers=WORKERS[mode], worker_type="thread", periodic=False)
    consumer.run()


PEER = Peer(
    name="huey",
    version=importlib.metadata.version("huey"),
    enqueue_one=enqueue_one,
    enqueue_bulk=None,
    run_worker=run_worker,
    settings={
        m: {"workers": n, "worker_type": "thread", "periodic": False, "results": False}
        for m, n in WORKERS.items()
    },
)
