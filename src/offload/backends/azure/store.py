"""Job records in Tables: reading a job with its ETag, writing a transition as
one transaction on the job's partition, event ids, ids and unique keys.

A transition's transaction replaces the job entity only if its ETag is still
the one read (``IfNotModified``), swaps the job's ready row and inserts its
events; a lost race fails the whole transaction with 412 and changes nothing,
which the caller reads as "refused" after re-reading the job.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import (
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.data.tables import TableTransactionError, UpdateMode

from offload.backends.azure import codec
from offload.backends.azure.clients import Clients
from offload.job import Event, Job

CLAIM_POLL = 0.05
CLAIM_ABANDONED = timedelta(seconds=30)
"""A unique key claimed for a job that was never written (its enqueue died
between the two writes) is taken over after this long."""
_IF_MATCH = {"mode": UpdateMode.REPLACE, "match_condition": MatchConditions.IfNotModified}


@dataclass
class Stored:
    """A job as read, with what a compare-and-set on it needs."""

    job: Job
    etag: str
    ready: str


class JobStore:
    def __init__(self, clients: Clients) -> None:
        self.c = clients
        self._queues: dict[str, str] = {}  # job id -> queue: never changes
        self._counter: tuple[int, str] | None = None

    # where a job lives ----------------------------------------------------------

    async def claim_id(self, job_id: str, queue: str) -> bool:
        """Record the job's queue under its id; ``False`` when the id was taken."""
        self.c.ops["table"] += 1
        try:
            await self.c.table("ids").create_entity(
                {"PartitionKey": job_id[:8], "RowKey": job_id, "Queue": queue}
            )
        except ResourceExistsError:
            return False
        self._queues[job_id] = queue
        return True

    async def queue_of(self, job_id: str) -> str | None:
        if job_id in self._queues:
            return self._queues[job_id]
        self.c.ops["table"] += 1
        try:
            row = await self.c.table("ids").get_entity(job_id[:8], job_id)
        except ResourceNotFoundError:
            return None
        self._queues[job_id] = row["Queue"]
        return str(row["Queue"])

    async def forget_id(self, job_id: str) -> None:
        self.c.ops["table"] += 1
        with contextlib.suppress(ResourceNotFoundError):
            await self.c.table("ids").delete_entity(job_id[:8], job_id)
        self._queues.pop(job_id, None)

    # reading and writing one job ----------------------------------------------

    async def read(self, job_id: str) -> Stored | None:
        queue = await self.queue_of(job_id)
        if queue is None:
            return None
        self.c.ops["table"] += 1
        try:
            e = await self.c.table("jobs").get_entity(codec.partition(queue), codec.job_key(job_id))
        except ResourceNotFoundError:
            return None
        return Stored(codec.to_job(e), str(e.metadata["etag"]), e.get("Ready") or "")

    async def commit(
        self, before: Stored | None, job: Job, events: list[Event], waits: bool
    ) -> Stored | None:
        """Write ``job`` (created when ``before`` is None, else replaced if
        unchanged since read), its ready row and its events in one transaction.
        ``None`` when the job changed meanwhile (or was created by another)."""
        ready = codec.ready_key(job) if waits else ""
        ops: list[Any] = [self._job_op(before, job, ready)]
        if before is not None and before.ready and before.ready != ready:
            ops.append(("delete", {"PartitionKey": codec.partition(job.queue),
                                   "RowKey": before.ready}))  # fmt: skip
        if ready and (before is None or before.ready != ready):
            ops.append(("upsert", self._ready_row(job, ready)))
        for event in events:
            ops.append(("create", codec.event_entity(job, event.id, event.kind, event.at,
                                                     event.data)))  # fmt: skip
        self.c.ops["table"] += 1
        try:
            result = await self.c.table("jobs").submit_transaction(ops)
        except TableTransactionError as exc:
            if exc.status_code in (409, 412, 404):
                return None
            raise
        return Stored(job, result[0]["etag"], ready)

    def _job_op(self, before: Stored | None, job: Job, ready: str) -> Any:
        entity = codec.job_entity(job, ready)
        if before is None:
            return ("create", entity)
        return ("update", entity, {**_IF_MATCH, "etag": before.etag})

    def _ready_row(self, job: Job, key: str) -> dict[str, Any]:
        return {"PartitionKey": codec.partition(job.queue), "RowKey": key, "Kind": "ready",
                "JobId": job.id, "Tenant": job.tenant, "RunAt": codec.ts(job.run_at)}  # fmt: skip

    # event ids ------------------------------------------------------------------

    async def next_event_ids(self, count: int) -> int:
        """Reserve ``count`` event ids, the first returned: a compare-and-set on
        one counter entity, so ids increase across every process of the backend."""
        table = self.c.table("meta")
        while True:
            if self._counter is None:
                self._counter = await self._read_counter()
            value, etag = self._counter
            entity = {"PartitionKey": "counter", "RowKey": "events",
                      "Value": codec.int64(value + count)}  # fmt: skip
            self.c.ops["table"] += 1
            try:
                meta = await table.update_entity(
                    entity,
                    etag=etag,
                    mode=UpdateMode.REPLACE,
                    match_condition=MatchConditions.IfNotModified,
                )
            except ResourceModifiedError:
                self._counter = None
                continue
            self._counter = (value + count, meta["etag"])
            return value + 1

    async def _read_counter(self) -> tuple[int, str]:
        table = self.c.table("meta")
        while True:
            self.c.ops["table"] += 1
            try:
                e = await table.get_entity("counter", "events")
            except ResourceNotFoundError:
                self.c.ops["table"] += 1
                with contextlib.suppress(ResourceExistsError):
                    await table.create_entity({"PartitionKey": "counter", "RowKey": "events",
                                               "Value": codec.int64(0)})  # fmt: skip
                continue
            value = e["Value"]
            return int(getattr(value, "value", value)), str(e.metadata["etag"])

    # unique keys ----------------------------------------------------------------

    async def claim_unique(self, tenant: str, key: str, job_id: str) -> str | None:
        """Point ``(tenant, key)`` at ``job_id`` unless a live job holds it;
        returns the live holder's id, or ``None`` once claimed."""
        table = self.c.table("unique")
        pk, rk = "u_" + codec.b64(tenant), codec.b64(key)
        while True:
            self.c.ops["table"] += 1
            try:
                await table.create_entity(_claim(pk, rk, job_id))
                return None
            except ResourceExistsError:
                pass
            self.c.ops["table"] += 1
            try:
                row = await table.get_entity(pk, rk)
            except ResourceNotFoundError:
                continue
            holder = row["JobId"]
            if holder != job_id:
                found = await self.read(holder)
                if found is not None and not found.job.ended:
                    return str(holder)
                if found is None and not _abandoned(row):
                    await asyncio.sleep(CLAIM_POLL)  # its enqueue is still writing the job
                    continue
            self.c.ops["table"] += 1
            try:
                await table.update_entity(_claim(pk, rk, job_id),
                                          etag=row.metadata["etag"], mode=UpdateMode.REPLACE,
                match_condition=MatchConditions.IfNotModified)  # fmt: skip
                return None
            except (ResourceModifiedError, ResourceNotFoundError):
                continue

    async def release_unique(self, tenant: str, key: str, job_id: str) -> None:
        """Forget the key if ``job_id`` still holds it (a purged job)."""
        table = self.c.table("unique")
        pk, rk = "u_" + codec.b64(tenant), codec.b64(key)
        try:
            self.c.ops["table"] += 1
            row = await table.get_entity(pk, rk)
            if row["JobId"] == job_id:
                self.c.ops["table"] += 1
                await table.delete_entity(
                    pk, rk, etag=row.metadata["etag"], match_condition=MatchConditions.IfNotModified
                )
        except (ResourceNotFoundError, ResourceModifiedError):
            pass


def _claim(pk: str, rk: str, job_id: str) -> dict[str, Any]:
    return {"PartitionKey": pk, "RowKey": rk, "JobId": job_id,
            "ClaimedAt": codec.ts(datetime.now(UTC))}  # fmt: skip


def _abandoned(row: Any) -> bool:
    claimed = codec.from_ts(row.get("ClaimedAt"))
    return claimed is None or datetime.now(UTC) - claimed > CLAIM_ABANDONED
