"""Tells the backend this worker is alive and what it runs, so dashboards and
``offload workers`` can list live workers; an entry not renewed runs out."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from offload.backends.base import Backend
from offload.job import WorkerInfo
from offload.worker.services import pause

log = logging.getLogger("offload.worker")


class Registry:
    def __init__(
        self,
        backend: Backend,
        info: Callable[[], WorkerInfo],
        every: float,
        stop: asyncio.Event,
    ) -> None:
        self.backend = backend
        self.info = info
        self.every = every
        self.stop = stop

    @property
    def ttl(self) -> float:
        return self.every * 3

    async def run(self) -> None:
        while True:
            await self.beat()
            if await pause(self.stop, self.every):
                return

    async def beat(self) -> None:
        try:
            await self.backend.worker_beat(self.info(), self.ttl)
        except Exception as exc:
            log.warning("worker registry beat failed: %s", exc)
