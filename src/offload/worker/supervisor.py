"""Runs the worker's services, each in its own loop, and stops the worker loudly
when one of them cannot recover.

One loop shape for every service keeps timing and failure handling in one place:
``once`` runs at start and then every ``interval`` seconds (sooner when the
service is woken). An exception from ``once`` is logged and the round is retried
after a short, doubling delay. A ``BackendError`` (a server restarting, a
connection dropped) is retried for as long as it lasts: the storage coming back
is what the worker waits for, as it did before services shared one loop. Any
other exception is a fault in offload or its set-up; a service that has not had
one good round for ``give_up_after`` seconds of those is dead, since carrying on
would only hide the fault.
The worker's fetch loop sees the death, stops, and ``Worker.run`` raises
``ServiceDied``.

Each loop also watches a stop event rather than relying on cancellation alone:
a client library that swallows ``CancelledError`` mid-call (seen with network
clients during reconnects) would otherwise keep a loop alive after shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Callable, Sequence

from offload.errors import BackendError
from offload.worker.services import Closable, Service, Wakeable

log = logging.getLogger("offload.worker")

# How long stopping waits for the loops after telling them to stop.
STOP_TIMEOUT = 5.0
# How long a service may fail without one good round before the worker stops.
GIVE_UP_AFTER = 60.0
# The retry delay after a failed round: doubles from the first, up to the cap.
BACKOFF_FIRST = 0.1
BACKOFF_CAP = 5.0


class ServiceDied(RuntimeError):
    """A side loop of the worker failed; the worker stopped because of it."""


class Supervisor:
    def __init__(
        self,
        services: Sequence[Service],
        on_death: Callable[[str, BaseException], None],
        *,
        give_up_after: float = GIVE_UP_AFTER,
        backoff_first: float = BACKOFF_FIRST,
        backoff_cap: float = BACKOFF_CAP,
    ) -> None:
        self.services = list(services)
        self.on_death = on_death
        self.give_up_after = give_up_after
        self.backoff_first = backoff_first
        self.backoff_cap = backoff_cap
        self.stopping = asyncio.Event()
        # Set once a loop has ended on its own: the fetch loop checks this flag,
        # one attribute read, rather than every task on each round.
        self.broken = False
        self._tasks: list[asyncio.Task[None]] = []
        self._wakes: list[asyncio.Event] = []

    def start(self) -> None:
        self.stopping.clear()
        for service in self.services:
            woken = service.woken if isinstance(service, Wakeable) else asyncio.Event()
            self._wakes.append(woken)
            task = asyncio.create_task(self._run(service, woken), name=f"offload-{service.name}")
            task.add_done_callback(self._ended)
            self._tasks.append(task)

    async def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Signal first, cancel second, and never wait unbounded: a loop stuck in
        a client call that ate its cancellation must not keep the worker alive."""
        self.stopping.set()
        for woken in self._wakes:
            woken.set()
        for task in self._tasks:
            task.cancel()
        if not self._tasks:
            return
        _, stuck = await asyncio.wait(self._tasks, timeout=timeout)
        for task in stuck:
            log.warning("service %s did not stop within %ss; leaving it", task.get_name(), timeout)

    def raise_if_died(self) -> None:
        for task in self._tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                error = task.exception()
                if isinstance(error, ServiceDied):
                    raise error
                raise ServiceDied(f"{task.get_name()} died") from error

    # one service ----------------------------------------------------------------------

    async def _run(self, service: Service, woken: asyncio.Event) -> None:
        try:
            await self._loop(service, woken)
        finally:
            if isinstance(service, Closable):
                await self._close(service)

    async def _loop(self, service: Service, woken: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        failures = 0
        failing_since = 0.0
        while not self.stopping.is_set():
            try:
                await service.once()
            except Exception as exc:
                if failures == 0:
                    failing_since = loop.time()
                failures += 1
                if not isinstance(exc, BackendError):
                    self._check_alive(service, exc, loop.time() - failing_since)
                delay = min(self.backoff_first * 2 ** (failures - 1), self.backoff_cap)
                log.warning("%s failed: %r; retrying in %.1fs", service.name, exc, delay)
                await self._wait(self.stopping, delay)
                continue
            failures = 0
            await self._wait(woken, service.interval)
            woken.clear()

    def _check_alive(self, service: Service, exc: Exception, failing_for: float) -> None:
        if failing_for >= self.give_up_after:
            raise ServiceDied(
                f"{service.name} failed for {failing_for:.0f}s without one good round: {exc!r}"
            ) from exc

    @staticmethod
    async def _wait(event: asyncio.Event, seconds: float) -> None:
        if math.isinf(seconds):  # woken only: no timer on the recorder's hot path
            await event.wait()
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await event.wait()

    async def _close(self, service: Closable) -> None:
        try:
            await service.close()
        except Exception as exc:
            log.warning("closing %s failed: %r", getattr(service, "name", service), exc)

    def _ended(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or self.stopping.is_set():
            return
        self.broken = True
        exc = task.exception() or ServiceDied(f"{task.get_name()} ended on its own")
        log.critical("service %s died: %r; stopping the worker", task.get_name(), exc)
        self.on_death(task.get_name(), exc)
