"""Reactive delivery: one LISTEN connection per backend instance, shared by its waiters.

Enqueue, requeue, redrive, lease expiry, resume, and a retry or snooze that is
due at once send ``pg_notify(channel, queue)``; the listener wakes the waiters
of that queue. An empty payload wakes every waiter: resuming a pause of a tenant
or of everything can make any queue leasable (a queue really named ``""`` then
wakes everyone, a harmless false wake-up). The connection lives outside the pool
because a LISTEN belongs to one session. When it drops (server restart,
``pg_terminate_backend``) the listener reconnects with a capped backoff and then
wakes every waiter, since a notification sent while it was away is lost: a
false wake-up costs one empty lease, a missed one a whole poll interval.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import psycopg

log = logging.getLogger("offload.backends.postgres")

_FIRST_DELAY = 0.05
_MAX_DELAY = 2.0
# How long reading what made the socket readable may take: a notification is
# read at once; anything else (a notice) ends the read after this.
_READ_FOR = 0.5


async def _readable(fileno: int, timeout: float) -> bool:
    """Whether ``fileno`` became readable within ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_reader(fileno, wake)
    try:
        async with asyncio.timeout(timeout):
            await ready
    except TimeoutError:
        return False
    finally:
        loop.remove_reader(fileno)
    return True


@dataclass(eq=False, slots=True)
class _Waiter:
    queues: frozenset[str]
    woken: asyncio.Event = field(default_factory=asyncio.Event)


class Listener:
    def __init__(self, conninfo: str, channel: str, ping_every: float = 30.0) -> None:
        self._conninfo = conninfo
        self._listen = b'LISTEN "' + channel.encode() + b'"'
        self._ping_every = ping_every
        self._waiters: set[_Waiter] = set()
        self._task: asyncio.Task[None] | None = None
        self.listening = asyncio.Event()
        """Set while LISTEN is active: before that, or between a drop and the
        reconnect, a notification can be missed (the caller's timeout covers it)."""

    async def wait(self, queues: Sequence[str], timeout: float) -> None:
        self._start()
        waiter = _Waiter(frozenset(queues))
        self._waiters.add(waiter)
        try:
            await asyncio.wait_for(waiter.woken.wait(), timeout)
        except TimeoutError:
            pass
        finally:
            self._waiters.discard(waiter)

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        self._wake(None)

    def _start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="offload-pg-listener")

    async def _run(self) -> None:
        delay, sessions = _FIRST_DELAY, 0
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self._conninfo, autocommit=True
                ) as conn:
                    await conn.execute(self._listen)
                    sessions += 1
                    if sessions > 1:
                        self._wake(None)
                    delay = _FIRST_DELAY
                    self.listening.set()
                    await self._follow(conn)
            except psycopg.Error as exc:
                log.info("LISTEN connection lost (%s); reconnecting in %.2fs", exc, delay)
            finally:
                self.listening.clear()
            await asyncio.sleep(delay)
            delay = min(delay * 2, _MAX_DELAY)

    async def _follow(self, conn: psycopg.AsyncConnection[object]) -> None:
        """Sleeps until the socket has something to read, then reads it with
        psycopg. Its ``notifies()`` wakes every 0.1 s while it waits (to see a
        Ctrl-C), ten wake-ups a second that were most of an idle worker's cost."""
        while True:
            if await _readable(conn.fileno(), self._ping_every):
                # What arrived is read at once; stop_after ends the read there
                # instead of waiting on in psycopg's 0.1 s steps.
                async for note in conn.notifies(timeout=_READ_FOR, stop_after=1):
                    self._wake(note.payload or None)
                continue
            # Quiet for a while: a peer that vanished without closing the socket
            # is only found out by talking to it. A notification that came in
            # with the answer waits in psycopg's backlog, which is not read
            # until the socket is readable again: waking everyone covers it.
            await conn.execute(b"SELECT 1")
            self._wake(None)

    def _wake(self, queue: str | None) -> None:
        for waiter in self._waiters:
            if queue is None or queue in waiter.queues:
                waiter.woken.set()
