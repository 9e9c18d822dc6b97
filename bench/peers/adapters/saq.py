"""SAQ on Redis.

SAQ has no bulk enqueue (``Queue.map`` enqueues one by one and then waits for
the results). The worker gets the same number of slots as the other async
libraries; everything else is SAQ's default.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
from typing import Any

from saq import Queue, Worker

from adapters._common import (
    FAST_CONCURRENCY,
    IO_CONCURRENCY,
    REDIS_URL,
    Kind,
    Peer,
    ajob_done,
)

CONCURRENCY = {"fast": FAST_CONCURRENCY, "io": IO_CONCURRENCY}
_queue: Queue | None = None


def queue() -> Queue:
    global _queue
    if _queue is None:
        _queue = Queue.from_url(REDIS_URL, name="peers")
    return _queue


async def job(ctx: dict[str, Any], *, kind: Kind, sent: float) -> None:
    await ajob_done(kind, sent)


async def setup() -> None:
    await queue().connect()


async def enqueue_one(kind: Kind, sent: float) -> None:
    await queue().enqueue("job", kind=kind, sent=sent)


async def run_worker(mode: str) -> None:
    worker = Worker(queue(), functions=[job], concurrency=CONCURRENCY[mode])
    await worker.start()
    await asyncio.Event().wait()


PEER = Peer(
    name="saq",
    version=importlib.metadata.version("saq"),
    enqueue_one=enqueue_one,
    enqueue_bulk=None,
    run_worker=run_worker,
    setup=setup,
    settings={m: {"concurrency": n} for m, n in CONCURRENCY.items()},
)
