"""taskiq with taskiq-redis's ``RedisStreamBroker`` (the acknowledging broker its
README shows first).

The receiver runs in this process (``taskiq.api.run_receiver_task``): the
``taskiq worker`` command forks worker processes from a parent. taskiq has no
bulk enqueue.
"""

from __future__ import annotations

import importlib.metadata

from taskiq.api import run_receiver_task
from taskiq_redis import RedisStreamBroker

from adapters._common import (
    FAST_CONCURRENCY,
    IO_CONCURRENCY,
    REDIS_URL,
    Kind,
    Peer,
    ajob_done,
)

broker = RedisStreamBroker(url=REDIS_URL, queue_name="peers")
MAX_ASYNC = {"fast": FAST_CONCURRENCY, "io": IO_CONCURRENCY}


@broker.task(task_name="peers.job")
async def job(kind: Kind, sent: float) -> None:
    await ajob_done(kind, sent)


async def setup() -> None:
    await broker.startup()


async def enqueue_one(kind: Kind, sent: float) -> None:
    await job.kiq(kind, sent)


async def run_worker(mode: str) -> None:
    await broker.startup()
    await run_receiver_task(broker, max_async_tasks=MAX_ASYNC[mode])


PEER = Peer(
    name="taskiq",
    version=importlib.metadata.version("taskiq"),
    enqueue_one=enqueue_one,
    enqueue_bulk=None,
    run_worker=run_worker,
    setup=setup,
    settings={
        m: {"broker": "RedisStreamBroker", "max_async_tasks": n} for m, n in MAX_ASYNC.items()
    },
)
