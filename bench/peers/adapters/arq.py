"""arq.

arq's worker polls its queue every ``poll_delay`` (0.5 s by default) and starts at
most ``max_jobs`` at once (10 by default); both caps would measure the defaults
rather than arq, so the worker polls every 10 ms with 50 slots. arq has no bulk
enqueue; results are not kept, as the other libraries do not keep them either.
"""

from __future__ import annotations

import importlib.metadata
from typing import Any

from arq import Worker, create_pool
from arq.connections import ArqRedis, RedisSettings

from adapters._common import (
    FAST_CONCURRENCY,
    IO_CONCURRENCY,
    REDIS_URL,
    Kind,
    Peer,
    ajob_done,
)

SETTINGS = RedisSettings.from_dsn(REDIS_URL)
WORKER = {
    "fast": {"max_jobs": FAST_CONCURRENCY, "poll_delay": 0.01, "keep_result": 0},
    "io": {"max_jobs": IO_CONCURRENCY, "poll_delay": 0.01, "keep_result": 0},
}
_pool: ArqRedis | None = None


async def job(ctx: dict[str, Any], kind: Kind, sent: float) -> None:
    await ajob_done(kind, sent)


async def setup() -> None:
    global _pool
    _pool = await create_pool(SETTINGS)


async def enqueue_one(kind: Kind, sent: float) -> None:
    assert _pool is not None
    await _pool.enqueue_job("job", kind, sent)


def run_worker(mode: str) -> None:
    Worker(functions=[job], redis_settings=SETTINGS, **WORKER[mode]).run()  # type: ignore[arg-type]


PEER = Peer(
    name="arq",
    version=importlib.metadata.version("arq"),
    enqueue_one=enqueue_one,
    enqueue_bulk=None,
    run_worker=run_worker,
    setup=setup,
    settings=WORKER,
)
