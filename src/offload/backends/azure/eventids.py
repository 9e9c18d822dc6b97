"""Event ids: one counter entity advanced by compare-and-set, so ids increase
across every process of the backend (the ``event_feed`` cursor).

Every backend call reserves ONE block for all the events it writes (a lease
of 50 jobs, a bulk enqueue of 1,000, a batch of completions), so the counter
costs one Table operation per call instead of one per transition, and two
busy workers rarely collide on it. A block is used at once by the call that
reserved it, never kept for later, so ids still follow time across processes
up to the commit-order caveat every sequence has (see ``Backend.event_feed``).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import (
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.data.tables import UpdateMode

from offload.backends.azure import codec
from offload.backends.azure.clients import Clients
from offload.job import Event, Job
from offload.lifecycle import EventKind

Items = list[tuple[EventKind, dict[str, Any]]]
"""The events of one transition, not numbered yet."""

_KEY = ("counter", "events")
# After a lost race: wait a few milliseconds, spread out so that two workers
# that collided do not collide again on their next try.
_BACKOFF = 0.004


class EventIds:
    def __init__(self, clients: Clients) -> None:
        self.c = clients
        self._last: tuple[int, str] | None = None  # value and ETag last seen
        self._lock = asyncio.Lock()
        self._asked: list[tuple[int, asyncio.Future[int]]] = []

    async def number(
        self, pending: Sequence[tuple[Job, datetime, Items]], block: tuple[int, int] | None = None
    ) -> list[list[Event]]:
        """The events of many transitions, numbered from one block: ``block``
        (first id, size) when the caller reserved one big enough, else a new one."""
        total = sum(len(items) for _, _, items in pending)
        if block is not None and total <= block[1]:
            next_id = block[0]
        else:
            next_id = await self.reserve(total) if total else 0
        out: list[list[Event]] = []
        for job, at, items in pending:
            out.append([Event(next_id + n, job.id, job.tenant, kind, at, data)
                        for n, (kind, data) in enumerate(items)])  # fmt: skip
            next_id += len(items)
        return out

    async def reserve(self, count: int) -> int:
        """Reserve ``count`` consecutive ids; returns the first. Calls of this
        process that arrive while a reservation is in flight are served
        together by the next one: one compare-and-set for all of them."""
        mine: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._asked.append((count, mine))
        async with self._lock:
            if not mine.done():
                asked, self._asked = self._asked, []
                try:
                    first = await self._reserve(sum(n for n, _ in asked))
                except BaseException:
                    # The others wait on: the next holder of the lock serves them.
                    self._asked = [a for a in asked if a[1] is not mine] + self._asked
                    raise
                for n, future in asked:
                    future.set_result(first)
                    first += n
        return mine.result()

    async def _reserve(self, count: int) -> int:
        tries = 0
        while True:
            if self._last is None:
                self._last = await self._read()
            value, etag = self._last
            won = await self._advance(value + count, etag)
            if won is not None:
                self._last = (value + count, won)
                return value + 1
            self._last = None
            tries += 1
            await asyncio.sleep(random.uniform(0, _BACKOFF * min(tries, 8)))

    async def latest(self) -> int:
        """The counter as it stands: at or after every id handed out, so a
        follower without a cursor starts there after one point read (ids of a
        block reserved but not yet written fall under the commit-order caveat
        of ``Backend.event_feed``)."""
        self.c.ops["table"] += 1
        try:
            e = await self.c.table("meta").get_entity(*_KEY)
        except ResourceNotFoundError:
            return 0
        value = e["Value"]
        return int(getattr(value, "value", value))

    async def _advance(self, value: int, etag: str) -> str | None:
        """Write ``value`` if the counter is unchanged; its new ETag, or ``None``."""
        entity = {"PartitionKey": _KEY[0], "RowKey": _KEY[1], "Value": codec.int64(value)}
        self.c.ops["table"] += 1
        try:
            meta = await self.c.table("meta").update_entity(
                entity, etag=etag, mode=UpdateMode.REPLACE,
                match_condition=MatchConditions.IfNotModified,
            )  # fmt: skip
        except (ResourceModifiedError, ResourceNotFoundError):
            return None
        return str(meta["etag"])

    async def _read(self) -> tuple[int, str]:
        table = self.c.table("meta")
        while True:
            self.c.ops["table"] += 1
            try:
                e = await table.get_entity(*_KEY)
            except ResourceNotFoundError:
                self.c.ops["table"] += 1
                with contextlib.suppress(ResourceExistsError):
                    await table.create_entity({"PartitionKey": _KEY[0], "RowKey": _KEY[1],
                                               "Value": codec.int64(0)})  # fmt: skip
                continue
            value = e["Value"]
            return int(getattr(value, "value", value)), str(e.metadata["etag"])
