"""RQ.

No-op jobs run on ``SimpleWorker``, which runs jobs in the worker process: the
default ``Worker`` forks a child per job, which measures ``fork`` rather than
the queue. RQ has no concurrency inside one process, so the I/O mix runs one
job at a time. ``Queue.enqueue_many`` is RQ's bulk API (one pipeline).
"""

from __future__ import annotations

import redis
import rq
from rq import Queue, SimpleWorker

from adapters._common import REDIS_URL, Kind, Peer, job_done

connection = redis.Redis.from_url(REDIS_URL)
queue = Queue("peers", connection=connection)


def job(kind: Kind, sent: float) -> None:
    job_done(kind, sent)


def enqueue_one(kind: Kind, sent: float) -> None:
    queue.enqueue(job, kind, sent)


def enqueue_bulk(kind: Kind, sents: list[float]) -> None:
    queue.enqueue_many([Queue.prepare_data(job, (kind, s)) for s in sents])


def run_worker(mode: str) -> None:
    SimpleWorker([queue], connection=connection).work(logging_level="WARNING")


PEER = Peer(
    name="rq",
    version=rq.__version__,
    enqueue_one=enqueue_one,
    enqueue_bulk=enqueue_bulk,
    run_worker=run_worker,
    settings={m: {"worker_class": "rq.SimpleWorker", "concurrency": 1} for m in ("fast", "io")},
)
