"""Leasing: due jobs read in order from their ready rows and STARTed together.

A queue's ready rows are full copies of its waiting jobs keyed by the
contract's order, so one range query returns the due jobs, in order, with the
ETags a START needs. The STARTs of one call go in as few transactions as
Storage allows (33 jobs each: the ready row deleted if unchanged, the job
entity written, its event inserted), with one block of event ids for all.

Two workers reading the same head of a queue race for it: the transaction
that loses changes nothing (412), and the loser reads the queue again, where
the jobs the winner took are gone.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from offload import lifecycle as lc
from offload.backends.azure import codec
from offload.backends.azure.apply import Handed, apply
from offload.backends.azure.clients import Clients
from offload.backends.azure.eventids import EventIds
from offload.backends.azure.store import JobStore, Stored, Write
from offload.job import Job, Pause

ROUNDS = 4
"""Reads of one queue per lease call: a round that lost a race reads again."""


class Leaser:
    def __init__(self, clients: Clients, store: JobStore, ids: EventIds) -> None:
        self.c = clients
        self.store = store
        self.ids = ids

    async def lease(
        self, queues: Sequence[str], limit: int, h: Handed, pauses: list[Pause]
    ) -> list[Job]:
        """START up to ``limit`` due jobs, queues in the given order."""
        leased: list[Job] = []
        for queue in queues:
            if len(leased) >= limit:
                break
            leased += await self._lease_queue(queue, limit - len(leased), h, pauses)
        return leased

    async def _lease_queue(
        self, queue: str, want: int, h: Handed, pauses: list[Pause]
    ) -> list[Job]:
        leased: list[Job] = []
        for _ in range(ROUNDS):
            rows = await self._due(queue, want - len(leased), pauses)
            started = await self._start(rows, h)
            leased += started
            if len(started) == len(rows):
                break  # all taken (or the queue ran out): no race lost
        return leased

    async def _due(self, queue: str, n: int, pauses: list[Pause]) -> list[Stored]:
        """The first ``n`` due jobs of the queue that no pause covers."""
        self.c.ops["table"] += 1
        rows = self.c.table("jobs").query_entities(
            "PartitionKey eq @pk and RowKey ge 'r_' and RowKey lt 'r`' and RunAt le @now",
            parameters={"pk": codec.partition(queue), "now": codec.ts(_now())},
            results_per_page=min(1000, n + 8),
        )
        found: list[Stored] = []
        async for row in rows:
            if not any(p.covers(row["Tenant"], queue) for p in pauses):
                found.append(_from_ready(row))
                if len(found) >= n:
                    break
        return found

    async def _start(self, rows: list[Stored], h: Handed) -> list[Job]:
        if not rows:
            return []
        now = _now()
        applied = [apply(s.job, lc.START, now, h) for s in rows]
        events = await self.ids.number([(job, now, items) for job, items in applied])
        writes = [Write(s, job, evs, False) for s, (job, _), evs in zip(rows, applied, events,
                                                                        strict=True)]  # fmt: skip
        done = await self.store.commit_many(writes, retry_rest=False)
        return [w.job for w, d in zip(writes, done, strict=True) if d is not None]


def _from_ready(row: Any) -> Stored:
    return Stored(codec.to_job(row), "", row["RowKey"], str(row.metadata["etag"]))


def _now() -> datetime:
    return datetime.now(UTC)
