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
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

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
from offload.lifecycle import State

CLAIM_POLL = 0.05
CLAIM_ABANDONED = timedelta(seconds=30)
"""A unique key claimed for a job that was never written (its enqueue died
between the two writes) is taken over after this long."""
HELD_MAX = 10_000
MAX_BODY = 3 * 1024 * 1024
"""A transaction's body is capped at 4 MiB; leave room for the envelope."""
_IF_MATCH = {"mode": UpdateMode.REPLACE, "match_condition": MatchConditions.IfNotModified}


@dataclass
class Stored:
    """A job as read, with what a compare-and-set on it needs. ``ready_etag``
    is set when the job was read from its ready row: a START then guards on
    that row instead of the job entity (see ``JobStore.commit``)."""

    job: Job
    etag: str
    ready: str
    ready_etag: str | None = None


@dataclass
class Write:
    """One job's transition as the transaction writes it."""

    before: Stored | None
    job: Job
    events: list[Event]
    waits: bool


class JobStore:
    def __init__(self, clients: Clients) -> None:
        self.c = clients
        self._queues: dict[str, str] = {}  # job id -> queue: never changes
        # Jobs this instance leased, as last written: completing or extending
        # them needs no read first; a stale entry only costs a failed CAS.
        self._held: dict[str, Stored] = {}

    # where a job lives ----------------------------------------------------------

    async def claim_id(self, job_id: str, queue: str) -> bool:
        """Record the job's queue under its id; ``False`` when the id was taken."""
        self.c.ops["table"] += 1
        try:
            await self.c.table("ids").create_entity(_id_row(job_id, queue))
        except ResourceExistsError:
            return False
        self._queues[job_id] = queue
        return True

    async def claim_ids(self, pairs: list[tuple[str, str]]) -> list[bool]:
        """``claim_id`` for many (distinct) ids, 100 per transaction in each
        partition of the ids table; a transaction refused because one id was
        taken is claimed again one id at a time."""
        won: dict[str, bool] = {}
        for chunk in _chunks(pairs, key=lambda p: p[0][:8], most=100):
            self.c.ops["table"] += 1
            try:
                await self.c.table("ids").submit_transaction(
                    [("create", _id_row(job_id, queue)) for job_id, queue in chunk]
                )
            except TableTransactionError as exc:
                if exc.status_code != 409:
                    raise
                for job_id, queue in chunk:
                    won[job_id] = await self.claim_id(job_id, queue)
                continue
            for job_id, queue in chunk:
                won[job_id] = True
                self._queues[job_id] = queue
        return [won[job_id] for job_id, _ in pairs]

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
        self._held.pop(job_id, None)

    # reading and writing one job ----------------------------------------------

    def held(self, job_id: str) -> Stored | None:
        """The job as this instance last wrote it while leasing it, if it does."""
        return self._held.get(job_id)

    async def read(self, job_id: str, queue: str | None = None) -> Stored | None:
        """The job as stored; ``queue`` (when known) saves looking it up."""
        queue = queue or await self.queue_of(job_id)
        if queue is None:
            return None
        self.c.ops["table"] += 1
        try:
            e = await self.c.table("jobs").get_entity(codec.partition(queue), codec.job_key(job_id))
        except ResourceNotFoundError:
            return None
        self._queues[job_id] = queue
        return Stored(codec.to_job(e), str(e.metadata["etag"]), e.get("Ready") or "")

    async def commit(
        self, before: Stored | None, job: Job, events: list[Event], waits: bool
    ) -> Stored | None:
        """Write ``job`` (created when ``before`` is None, else replaced if
        unchanged since read), its ready row and its events in one transaction.
        ``None`` when the job changed meanwhile (or was created by another)."""
        [done] = await self.commit_many([Write(before, job, events, waits)])
        return done

    async def commit_many(
        self, writes: list[Write], *, retry_rest: bool = True
    ) -> list[Stored | None]:
        """Write many transitions, as few transactions as Storage allows (one
        partition, 100 operations, 4 MiB each); ``None`` for each refused one.
        When a transaction is refused because one of its jobs changed, that job
        is reported refused and, with ``retry_rest``, the others are sent again;
        without it they are all reported refused (a lease that lost a race
        reads the queue again rather than trying its rows one by one)."""
        done: dict[int, Stored | None] = {}
        indexed = list(enumerate(writes))
        for chunk in _chunks(indexed, key=lambda iw: codec.partition(iw[1].job.queue),
                             most=100, cost=lambda iw: _op_count(iw[1]),
                             weight=lambda iw: _weight(iw[1]),
                             distinct=lambda iw: iw[1].job.id):  # fmt: skip
            while chunk:
                results = await self._submit([w for _, w in chunk])
                if isinstance(results, list):
                    done.update((i, r) for (i, _), r in zip(chunk, results, strict=True))
                    break
                refused = chunk if not retry_rest else [chunk[results]]
                for i, w in refused:
                    done[i] = None
                    if w.before is not None and self._held.get(w.job.id) is w.before:
                        del self._held[w.job.id]  # stale: read it again next time
                chunk = [iw for iw in chunk if iw not in refused]
        return [done[i] for i in range(len(writes))]

    async def _submit(self, writes: list[Write]) -> list[Stored] | int:
        """One transaction: what was written, or the index of the write whose
        compare-and-set (or create) was refused."""
        ops: list[Any] = []
        starts: list[int] = []
        at: list[int] = []  # where each write's job operation is
        for w in writes:
            starts.append(len(ops))
            at.append(len(ops) + (1 if w.before is not None and w.before.ready_etag else 0))
            ops += _ops(w)
        self.c.ops["table"] += 1
        try:
            result = await self.c.table("jobs").submit_transaction(ops)
        except TableTransactionError as exc:
            if exc.status_code in (409, 412, 404):
                return _owner(starts, exc.index)
            raise
        return [self._written(w, str(result[n]["etag"])) for w, n in zip(writes, at, strict=True)]

    def _written(self, w: Write, etag: str) -> Stored:
        stored = Stored(w.job, etag, codec.ready_key(w.job) if w.waits else "")
        self._queues[w.job.id] = w.job.queue
        if w.job.state is State.RUNNING and w.job.lease_token is not None:
            self._held[w.job.id] = stored
            while len(self._held) > HELD_MAX:
                del self._held[next(iter(self._held))]
        else:
            self._held.pop(w.job.id, None)
        return stored

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


def _ops(w: Write) -> list[Any]:
    """The operations of one job's transition. The job entity is replaced only
    if unchanged since read; a START read from the ready row guards on that
    row instead (deleted only if unchanged), which is as safe, since every
    write of a waiting job rewrites its ready row in the same transaction."""
    job, before = w.job, w.before
    pk = codec.partition(job.queue)
    ready = codec.ready_key(job) if w.waits else ""
    entity = codec.job_entity(job, ready)
    ops: list[Any] = []
    if before is None:
        ops.append(("create", entity))
    elif before.ready_etag:
        assert not w.waits, "a transition guarded by its ready row must take the job out"
        ops.append(
            (
                "delete",
                {"PartitionKey": pk, "RowKey": before.ready},
                {"etag": before.ready_etag, "match_condition": MatchConditions.IfNotModified},
            )
        )
        ops.append(("update", entity, {"mode": UpdateMode.REPLACE}))
    else:
        ops.append(("update", entity, {**_IF_MATCH, "etag": before.etag}))
        if before.ready and before.ready != ready:
            ops.append(("delete", {"PartitionKey": pk, "RowKey": before.ready}))
    if ready:
        ops.append(("upsert", codec.ready_entity(job, ready), {"mode": UpdateMode.REPLACE}))
    ops += _cancel_marker(w)
    for e in w.events:
        ops.append(("create", codec.event_entity(job, e.id, e.kind, e.at, e.data)))
    return ops


def _owner(starts: list[int], op: int) -> int:
    """The write that operation ``op`` of a transaction belongs to, given
    where each write's operations begin."""
    return max(n for n, start in enumerate(starts) if start <= op) if starts else 0


def _cancel_marker(w: Write) -> list[Any]:
    """A running job asked to cancel has a marker row, so its worker finds the
    requests among its jobs with one range query (``cancel_key``)."""
    asked = w.job.cancel_requested
    was = w.before is not None and w.before.job.cancel_requested
    key = {"PartitionKey": codec.partition(w.job.queue), "RowKey": codec.cancel_key(w.job.id)}
    if asked and not was:
        return [("upsert", {**key, "Kind": "cancel", "JobId": w.job.id})]
    return [("delete", key)] if was and not asked else []


def _op_count(w: Write) -> int:
    """The operations ``_ops`` makes for ``w``."""
    before = w.before
    job_ready = 1 if w.waits else 0
    old_ready = 1 if before is not None and before.ready and before.ready != (
        codec.ready_key(w.job) if w.waits else "") else 0  # fmt: skip
    marker = int(w.job.cancel_requested != (before is not None and before.job.cancel_requested))
    return 1 + job_ready + old_ready + marker + len(w.events)


def _weight(w: Write) -> int:
    """About the bytes ``w`` adds to a transaction's body (bytes go as base64;
    a waiting job is written twice, entity and ready row)."""
    j = w.job
    data = len(j.payload) + len(j.result_data or b"") + len(j.checkpoint_data or b"")
    text = len(repr(j.error)) + len(repr(j.meta)) + sum(len(repr(e.data)) for e in w.events)
    return (data * 4 // 3 + text + 2048) * (2 if w.waits else 1) + 512 * len(w.events)


T = TypeVar("T")


def _chunks(
    items: list[T], *, key: Callable[[T], str], most: int,
    cost: Callable[[T], int] = lambda _: 1, weight: Callable[[T], int] = lambda _: 0,
    distinct: Callable[[T], str] | None = None,
) -> list[list[T]]:  # fmt: skip
    """Group ``items`` into transactions: one partition (``key``) each, at most
    ``most`` operations and ``MAX_BODY`` bytes, each entity once. Order is kept
    within a partition."""
    groups: dict[str, list[tuple[list[T], list[int], set[str]]]] = {}
    for item in items:
        chunks = groups.setdefault(key(item), [([], [0, 0], set())])
        last, used, seen = chunks[-1]
        c, w, d = cost(item), weight(item), distinct(item) if distinct else ""
        if last and (used[0] + c > most or used[1] + w > MAX_BODY or d in seen):
            last, used, seen = [], [0, 0], set()
            chunks.append((last, used, seen))
        last.append(item)
        used[0] += c
        used[1] += w
        if d:
            seen.add(d)
    return [c[0] for chunks in groups.values() for c in chunks if c[0]]


def _id_row(job_id: str, queue: str) -> dict[str, Any]:
    return {"PartitionKey": job_id[:8], "RowKey": job_id, "Queue": queue}


def _claim(pk: str, rk: str, job_id: str) -> dict[str, Any]:
    return {"PartitionKey": pk, "RowKey": rk, "JobId": job_id,
            "ClaimedAt": codec.ts(datetime.now(UTC))}  # fmt: skip


def _abandoned(row: Any) -> bool:
    claimed = codec.from_ts(row.get("ClaimedAt"))
    return claimed is None or datetime.now(UTC) - claimed > CLAIM_ABANDONED
