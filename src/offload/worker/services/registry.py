"""Tells the backend this worker is alive and what it runs, so dashboards and
``offload workers`` can list live workers; an entry not renewed runs out, and a
worker that stops cleanly removes its own at once."""

from __future__ import annotations

import logging
from collections.abc import Callable

from offload.backends.base import Backend
from offload.job import WorkerInfo

log = logging.getLogger("offload.worker")


class Registry:
    name = "registry"

    def __init__(self, backend: Backend, info: Callable[[], WorkerInfo], every: float) -> None:
        self.backend = backend
        self.info = info
        self.interval = every

    @property
    def ttl(self) -> float:
        return self.interval * 3

    async def once(self) -> None:
        await self.backend.worker_beat(self.info(), self.ttl)

    async def close(self) -> None:
        await self.backend.worker_remove(self.info().id)
