"""Pauses, limits, the worker registry, schedules and batches: small records
in the ``control`` table, each changed by a compare-and-set on its ETag."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import (
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.data.tables import UpdateMode

from offload import event_data as ed
from offload.backends.azure import codec
from offload.backends.azure.clients import Clients
from offload.backends.base import Backend, pause_order
from offload.job import Batch, NewBatch, Pause, Schedule, WorkerInfo
from offload.lifecycle import EventKind, State

_IF_MATCH = {"mode": UpdateMode.REPLACE, "match_condition": MatchConditions.IfNotModified}
Entity = dict[str, Any]


def _opt(value: str | None) -> str:
    return "-" if value is None else "+" + value


class Records(Backend):
    _c: Clients

    async def _get(self, pk: str, rk: str) -> Any:
        self._c.ops["table"] += 1
        try:
            return await self._c.table("control").get_entity(pk, rk)
        except ResourceNotFoundError:
            return None

    async def _rows(self, pk: str) -> list[Any]:
        self._c.ops["table"] += 1
        rows = self._c.table("control").query_entities("PartitionKey eq @pk",
                                                       parameters={"pk": pk})  # fmt: skip
        return [r async for r in rows]

    async def _put(self, entity: Entity, etag: str | None) -> bool:
        """Create (``etag`` None) or replace-if-unchanged; ``False`` on a lost race."""
        table = self._c.table("control")
        self._c.ops["table"] += 1
        try:
            if etag is None:
                await table.create_entity(entity)
            else:
                await table.update_entity(
                    entity,
                    etag=etag,
                    mode=UpdateMode.REPLACE,
                    match_condition=MatchConditions.IfNotModified,
                )
        except (ResourceExistsError, ResourceModifiedError, ResourceNotFoundError):
            return False
        return True

    async def _delete(self, pk: str, rk: str) -> bool:
        """Delete if present; the SDK's delete does not say whether it was, so
        the row is read first and deleted only while unchanged."""
        row = await self._get(pk, rk)
        if row is None:
            return False
        self._c.ops["table"] += 1
        try:
            await self._c.table("control").delete_entity(
                pk, rk, etag=row.metadata["etag"], match_condition=MatchConditions.IfNotModified
            )
        except (ResourceNotFoundError, ResourceModifiedError):
            return False
        return True

    async def _cas(self, pk: str, rk: str, change: Callable[[Any], Entity | None]) -> Any:
        """Read, change, write back if unchanged; again on a lost race. ``change``
        returns the new entity, or ``None`` to write nothing."""
        while True:
            row = await self._get(pk, rk)
            new = change(row)
            if new is None:
                return row
            new.update(PartitionKey=pk, RowKey=rk)
            if await self._put(new, None if row is None else row.metadata["etag"]):
                return new

    # pauses -----------------------------------------------------------------------

    async def control_pause(self, tenant: str | None, queue: str | None) -> Pause:
        await self.open()
        rk = codec.b64(_opt(tenant) + "|" + _opt(queue))
        entity: Entity = {"PartitionKey": "pause", "RowKey": rk, "At": codec.ts(_now())}
        entity.update({k: v for k, v in (("Tenant", tenant), ("Queue", queue)) if v is not None})
        if await self._put(entity, None):
            await self._control_event(ed.pause_tenant(tenant), EventKind.PAUSED,
                                      ed.scope(tenant, queue))  # fmt: skip
        row = await self._get("pause", rk)
        return _pause(row)

    async def control_resume(self, tenant: str | None, queue: str | None) -> bool:
        await self.open()
        lifted = await self._delete("pause", codec.b64(_opt(tenant) + "|" + _opt(queue)))
        if lifted:
            await self._control_event(ed.pause_tenant(tenant), EventKind.RESUMED,
                                      ed.scope(tenant, queue))  # fmt: skip
            self._bell_wake()
        return lifted

    def _bell_wake(self) -> None:
        """Resuming may free jobs: wake this process's idle workers."""

    async def _control_event(self, tenant: str, kind: EventKind, data: dict[str, Any]) -> None:
        """Append an event of no job to the feed. Tables has no transaction across
        the control and jobs tables, so it is written just after the change: a
        crash in between loses the event, never the change."""

    async def control_pauses(self, tenant: str | None = None) -> list[Pause]:
        await self.open()
        pauses = [_pause(r) for r in await self._rows("pause")]
        return sorted((p for p in pauses if tenant is None or p.tenant == tenant), key=pause_order)

    # limits -------------------------------------------------------------------------

    async def limit_acquire(self, key: str, holder: str, limit: int, hold_for: float) -> bool:
        await self.open()
        won = False

        def change(row: Any) -> Entity | None:
            nonlocal won
            now = _now()
            held = {h: u for h, u in _json(row, "Holders", {}).items()
                    if codec.from_ts(u) > now}  # type: ignore[operator]  # fmt: skip
            won = holder in held or len(held) < limit
            if not won:
                return None
            held[holder] = codec.ts(now + timedelta(seconds=hold_for))
            return {"Holders": json.dumps(held)}

        await self._cas("limit", codec.b64(key), change)
        return won

    async def limit_release(self, key: str, holder: str) -> None:
        def change(row: Any) -> Entity | None:
            held = _json(row, "Holders", {})
            if holder not in held:
                return None
            del held[holder]
            return {"Holders": json.dumps(held)}

        await self._cas("limit", codec.b64(key), change)

    async def rate_acquire(self, key: str, limit: int, period: float) -> float:
        await self.open()
        wait = 0.0

        def change(row: Any) -> Entity | None:
            nonlocal wait
            now = _now()
            window = timedelta(seconds=period)
            starts = [t for t in (codec.from_ts(s) for s in _json(row, "Starts", []))
                      if t is not None and t > now - window]  # fmt: skip
            if len(starts) >= limit:
                wait = max(0.0, (starts[-limit] + window - now).total_seconds())
                return None
            wait = 0.0
            starts.append(now)
            return {"Starts": json.dumps([codec.ts(t) for t in starts])}

        await self._cas("rate", codec.b64(key), change)
        return wait

    # workers ------------------------------------------------------------------------

    async def worker_beat(self, info: WorkerInfo, ttl: float) -> None:
        await self.open()
        now = _now()
        data = {"id": info.id, "hostname": info.hostname, "pid": info.pid,
                "queues": info.queues, "concurrency": info.concurrency,
                "started_at": codec.ts(info.started_at), "job_ids": info.job_ids,
                "last_seen_at": codec.ts(now), "meta": info.meta}  # fmt: skip
        until = codec.ts(now + timedelta(seconds=ttl))
        entity = {"PartitionKey": "worker", "RowKey": codec.b64(info.id),
                  "Info": json.dumps(data), "Until": until}  # fmt: skip
        self._c.ops["table"] += 1
        await self._c.table("control").upsert_entity(entity, mode=UpdateMode.REPLACE)

    async def worker_list(self) -> list[WorkerInfo]:
        await self.open()
        now = codec.ts(_now())
        alive = [_worker(json.loads(r["Info"])) for r in await self._rows("worker")
                 if r["Until"] > now]  # fmt: skip
        return sorted(alive, key=lambda w: w.id)

    async def worker_remove(self, worker_id: str) -> None:
        await self._delete("worker", codec.b64(worker_id))

    # schedules ----------------------------------------------------------------------

    async def schedule_upsert(self, schedule: Schedule) -> Schedule:
        await self.open()
        rk = _schedule_key(schedule.tenant, schedule.id)

        def change(row: Any) -> Entity | None:
            old = _schedule(row) if row is not None else None
            now = _now()
            schedule.created_at = old.created_at if old else now
            schedule.last_run_at = old.last_run_at if old else None
            schedule.last_job_id = old.last_job_id if old else None
            schedule.updated_at = now
            return _schedule_entity(schedule)

        return _schedule(await self._cas("schedule", rk, change))

    async def schedule_get(self, schedule_id: str, tenant: str) -> Schedule | None:
        await self.open()
        row = await self._get("schedule", _schedule_key(tenant, schedule_id))
        return None if row is None else _schedule(row)

    async def schedule_list(self, tenant: str | None = None) -> list[Schedule]:
        await self.open()
        found = [_schedule(r) for r in await self._rows("schedule")]
        found = [s for s in found if tenant is None or s.tenant == tenant]
        return sorted(found, key=lambda s: (s.tenant, s.id))

    async def schedule_delete(self, schedule_id: str, tenant: str) -> bool:
        await self.open()
        return await self._delete("schedule", _schedule_key(tenant, schedule_id))

    async def schedule_due(self, before: datetime, limit: int = 100) -> list[Schedule]:
        await self.open()
        due = [s for s in await self.schedule_list()
               if s.next_run_at is not None and s.next_run_at <= before]  # fmt: skip
        due.sort(key=lambda s: (s.next_run_at, s.tenant, s.id))
        return due[:limit]

    async def schedule_advance(
        self,
        schedule_id: str,
        tenant: str,
        expected: datetime,
        next_run_at: datetime | None,
        job_id: str | None,
    ) -> bool:
        row = await self._get("schedule", _schedule_key(tenant, schedule_id))
        if row is None or _schedule(row).next_run_at != expected:
            return False
        found = _schedule(row)
        found.next_run_at, found.last_run_at = next_run_at, expected
        if job_id is not None:
            found.last_job_id = job_id
        entity = _schedule_entity(found)
        entity.update(PartitionKey="schedule", RowKey=row["RowKey"])
        return await self._put(entity, row.metadata["etag"])

    # batches ------------------------------------------------------------------------

    async def batch_create(self, batch: NewBatch) -> Batch:
        await self.open()
        entity: Entity = {
            "PartitionKey": "batch", "RowKey": batch.id, "Tenant": batch.tenant,
            "CreatedAt": codec.ts(_now()), "Meta": json.dumps(batch.meta),
        }  # fmt: skip
        if batch.name is not None:
            entity["Name"] = batch.name
        codec.put_bytes(entity, "Then", batch.then)
        await self._put(entity, None)
        found = await self.batch_get(batch.id)
        assert found is not None
        return found

    async def batch_get(self, batch_id: str, tenant: str | None = None) -> Batch | None:
        await self.open()
        row = await self._get("batch", batch_id)
        if row is None or (tenant is not None and row["Tenant"] != tenant):
            return None
        return await self._counted(_batch(row))

    async def batch_list(
        self,
        tenant: str | None = None,
        *,
        unfinished: bool = False,
        before_id: str | None = None,
        limit: int = 50,
    ) -> list[Batch]:
        await self.open()
        found = [_batch(r) for r in await self._rows("batch")]
        picked = [b for b in found if (tenant is None or b.tenant == tenant)
                  and (not unfinished or b.finished_at is None)
                  and (before_id is None or b.id < before_id)]  # fmt: skip
        picked.sort(key=lambda b: b.id, reverse=True)
        return [await self._counted(b) for b in picked[:limit]]

    async def batch_finish(self, batch_id: str, continuation_ids: Sequence[str]) -> bool:
        row = await self._get("batch", batch_id)
        if row is None or row.get("FinishedAt"):
            return False
        row["FinishedAt"] = codec.ts(_now())
        row["Continuations"] = json.dumps(list(continuation_ids))
        if not await self._put(dict(row), row.metadata["etag"]):
            return False
        data = ed.batch_finished(batch_id, continuation_ids)
        await self._control_event(row["Tenant"], EventKind.BATCH_FINISHED, data)
        return True

    async def batch_purge(self, finished_before: datetime) -> int:
        """A scan of the batch rows, then one count of each candidate's jobs:
        batch records are few next to jobs, and only finished ones are counted."""
        await self.open()
        old = [b for b in (_batch(r) for r in await self._rows("batch"))
               if b.finished_at is not None and b.finished_at < finished_before]  # fmt: skip
        gone = 0
        for batch in old:
            if (await self._counted(batch)).total == 0 and await self._delete("batch", batch.id):
                gone += 1
        return gone

    async def _counted(self, batch: Batch) -> Batch:
        """Counts read from the jobs themselves, so they always equal their states."""
        self._c.ops["table"] += 1
        rows = self._c.table("jobs").query_entities(
            "Kind eq 'job' and BatchId eq @b", parameters={"b": batch.id}, select=["State"]
        )
        counts: dict[State, int] = {}
        async for r in rows:
            counts[State(r["State"])] = counts.get(State(r["State"]), 0) + 1
        batch.counts = counts
        return batch


def _now() -> datetime:
    return datetime.now(UTC)


def _json(row: Any, name: str, default: Any) -> Any:
    return default if row is None or name not in row else json.loads(row[name])


def _pause(row: Any) -> Pause:
    return Pause(row.get("Tenant"), row.get("Queue"), codec.from_ts(row["At"]))


def _worker(d: dict[str, Any]) -> WorkerInfo:
    return WorkerInfo(
        id=d["id"], hostname=d["hostname"], pid=d["pid"], queues=d["queues"],
        concurrency=d["concurrency"], started_at=codec.from_ts(d["started_at"]),  # type: ignore[arg-type]
        job_ids=d["job_ids"], last_seen_at=codec.from_ts(d["last_seen_at"]), meta=d["meta"],
    )  # fmt: skip


def _schedule_key(tenant: str, schedule_id: str) -> str:
    return codec.b64(tenant) + "_" + codec.b64(schedule_id)


def _schedule_entity(s: Schedule) -> Entity:
    e: Entity = {
        "Id": s.id, "Task": s.task, "Cron": s.cron, "Tenant": s.tenant, "Timezone": s.timezone,
        "Queue": s.queue, "Priority": s.priority, "MaxAttempts": s.max_attempts,
        "Unique": s.unique, "Meta": json.dumps(s.meta),
    }  # fmt: skip
    codec.put_bytes(e, "Payload", s.payload)
    for name, value in (("Timeout", s.timeout), ("LastJobId", s.last_job_id),
                        ("Description", s.description)):  # fmt: skip
        if value is not None:
            e[name] = value
    for name, moment in (("NextRunAt", s.next_run_at), ("LastRunAt", s.last_run_at),
                         ("CreatedAt", s.created_at), ("UpdatedAt", s.updated_at)):  # fmt: skip
        if moment is not None:
            e[name] = codec.ts(moment)
    return e


def _schedule(r: Any) -> Schedule:
    timeout = r.get("Timeout")
    return Schedule(
        id=r["Id"], task=r["Task"], payload=codec.get_bytes(r, "Payload") or b"",
        cron=r["Cron"], next_run_at=codec.from_ts(r.get("NextRunAt")), tenant=r["Tenant"],
        timezone=r["Timezone"], queue=r["Queue"], priority=int(r["Priority"]),
        max_attempts=int(r["MaxAttempts"]), timeout=None if timeout is None else float(timeout),
        unique=bool(r["Unique"]), last_run_at=codec.from_ts(r.get("LastRunAt")),
        last_job_id=r.get("LastJobId"), created_at=codec.from_ts(r.get("CreatedAt")),
        updated_at=codec.from_ts(r.get("UpdatedAt")), meta=json.loads(r["Meta"]),
        description=r.get("Description"),
    )  # fmt: skip


def _batch(r: Any) -> Batch:
    created = codec.from_ts(r["CreatedAt"])
    assert created is not None
    return Batch(
        id=r["RowKey"], tenant=r["Tenant"], created_at=created, name=r.get("Name"),
        then=codec.get_bytes(r, "Then"), finished_at=codec.from_ts(r.get("FinishedAt")),
        continuation_ids=json.loads(r.get("Continuations") or "[]"),
        meta=json.loads(r.get("Meta") or "{}"),
    )  # fmt: skip
