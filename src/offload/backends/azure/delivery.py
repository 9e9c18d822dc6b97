"""Storage Queue messages: one per job landing waiting, naming the job, visible
when it comes due. They wake idle workers (one receive per queue per poll
interval, since Storage bills every empty receive) and drive the Azure
Functions trigger; the job's state and its lease live in Tables."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from datetime import datetime

from azure.core.exceptions import AzureError, ResourceNotFoundError
from azure.storage.queue.aio import QueueClient

from offload.backends.azure.clients import Clients
from offload.job import Job

log = logging.getLogger("offload.backends.azure")
MAX_VISIBILITY = 7 * 24 * 3600 - 60
"""Storage caps the initial visibility at 7 days; a job due later is signalled
at the cap, and whoever receives it early signals it again."""
RECEIVE_BATCH = 32
SENDS_IN_FLIGHT = 16
# Same-process wake-ups (an enqueue in this process wakes its idle workers at
# once), per prefix: (loop, event) pairs.
_waiters: dict[str, set[tuple[asyncio.AbstractEventLoop, asyncio.Event]]] = {}


def message(job: Job) -> str:
    return json.dumps({"id": job.id, "queue": job.queue, "tenant": job.tenant})


def parse(body: str) -> tuple[str, str]:
    """``(job id, queue)`` of a message body; a clear error for anything else."""
    try:
        data = json.loads(body)
        return str(data["id"]), str(data["queue"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"not an offload job message: {body[:80]!r}") from exc


class Doorbell:
    def __init__(self, clients: Clients) -> None:
        self.c = clients

    async def ring(self, job: Job, now: datetime, at_least: float = 0.0) -> None:
        """Send the job's message, visible at its due time (and not before
        ``at_least`` seconds). A lost message only delays the job until a
        worker's next poll of the ready rows."""
        await self.ring_many([job], now, at_least)

    async def ring_many(self, jobs: Sequence[Job], now: datetime, at_least: float = 0.0) -> None:
        """``ring`` for many jobs, a few sends in flight at once (one Storage
        request per message is the price of a trigger that runs each job)."""
        gate = asyncio.Semaphore(SENDS_IN_FLIGHT)

        async def send(job: Job) -> None:
            async with gate:
                await self._send(job, now, at_least)

        await asyncio.gather(*(send(job) for job in jobs))
        self.wake_local()

    async def _send(self, job: Job, now: datetime, at_least: float) -> None:
        due_in = max(at_least, (job.run_at - now).total_seconds())
        delay = max(0, min(MAX_VISIBILITY, int(due_in + 0.999)))
        body = message(job)

        async def send(client: QueueClient) -> object:
            self.c.ops["queue"] += 1
            return await client.send_message(body, visibility_timeout=delay)

        try:
            await self.c.in_queue(job.queue, send)
        except AzureError as exc:
            log.warning("could not signal job %s on Storage queue: %s", job.id, exc)

    def wake_local(self) -> None:
        for loop, event in list(_waiters.get(self.c.target.prefix, ())):
            if not loop.is_closed():
                loop.call_soon_threadsafe(event.set)

    async def wait(self, queues: Sequence[str], timeout: float) -> None:
        """Return once a message of ``queues`` was received (and deleted: it has
        done its job of waking a worker), on a local wake-up, or after ``timeout``."""
        if await self._received(queues):
            return
        waiter = (asyncio.get_running_loop(), asyncio.Event())
        _waiters.setdefault(self.c.target.prefix, set()).add(waiter)
        try:
            await asyncio.wait_for(waiter[1].wait(), timeout)
        except TimeoutError:
            pass
        finally:
            _waiters[self.c.target.prefix].discard(waiter)

    async def _received(self, queues: Sequence[str]) -> bool:
        got = False
        for queue in queues:
            client = self.c.queue(queue)
            try:
                self.c.ops["queue"] += 1
                received = [m async for m in client.receive_messages(
                    messages_per_page=RECEIVE_BATCH, max_messages=RECEIVE_BATCH,
                    visibility_timeout=30,
                )]  # fmt: skip
                got = got or bool(received)
                self.c.ops["queue"] += len(received)
                # A delete refused (the message went back and someone else
                # holds it now) changes nothing: the message only woke us.
                await asyncio.gather(*(client.delete_message(m.id, m.pop_receipt)
                                       for m in received), return_exceptions=True)  # fmt: skip
            except ResourceNotFoundError:
                continue
            except AzureError as exc:
                log.warning("could not receive from Storage queue of %r: %s", queue, exc)
        return got
