"""All-time statistics on Tables.

A count row lives in the partition of its queue (RowKey
``s_<tenant>_<day>_<state>``), so the purge deletes a job's row and adds it to
its count in one entity-group transaction: the count cannot drift from the
deletes even when several workers purge at once. A lost race on the count row
(its ETag moved) re-reads it and tries again.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableTransactionError, UpdateMode

from offload import lifecycle as lc
from offload.backends.azure import codec
from offload.backends.azure.tables import Table
from offload.errors import BackendError
from offload.job import DayCount, Job
from offload.lifecycle import State

_TRIES = 20
_ENDED = " or ".join(f"State eq '{s.value}'" for s in sorted(lc.ENDED))


def _key(job: Job, day: date) -> str:
    return f"s_{codec.b64(job.tenant)}_{day.isoformat()}_{job.state.value}"


def _count_entity(job: Job, pk: str, key: str, day: date, count: int) -> dict[str, Any]:
    return {
        "PartitionKey": pk, "RowKey": key, "Kind": "stat", "Tenant": job.tenant,
        "Queue": job.queue, "Day": day.isoformat(), "Outcome": job.state.value,
        "Count": codec.int64(count),
    }  # fmt: skip


def _value(raw: Any) -> int:
    return int(getattr(raw, "value", raw))


async def delete_counted(table: Table, job: Job) -> None:
    """Delete the job's row and count it, in one transaction; nothing when
    another purge deleted (and counted) it first."""
    assert job.finished_at is not None
    pk, day = codec.partition(job.queue), job.finished_at.astimezone(UTC).date()
    key = _key(job, day)
    gone = ("delete", {"PartitionKey": pk, "RowKey": codec.job_key(job.id)})
    for _ in range(_TRIES):
        try:
            row = await table.get_entity(pk, key)
        except ResourceNotFoundError:
            row = None
        count = 1 + (_value(row["Count"]) if row is not None else 0)
        entity = _count_entity(job, pk, key, day, count)
        bump: Any = ("create", entity) if row is None else ("update", entity, {
            "mode": UpdateMode.REPLACE, "etag": row.metadata["etag"],
            "match_condition": MatchConditions.IfNotModified})  # fmt: skip
        try:
            await table.submit_transaction([gone, bump])
            return
        except TableTransactionError:
            if not await _exists(table, pk, codec.job_key(job.id)):
                return
    raise BackendError(f"could not count purged job {job.id}: its count row kept changing")


async def _exists(table: Table, pk: str, key: str) -> bool:
    try:
        await table.get_entity(pk, key, select=["RowKey"])
    except ResourceNotFoundError:
        return False
    return True


def _filter(kind: str, tenant: str | None, queue: str | None) -> tuple[str, dict[str, Any]]:
    clauses, params = [kind], dict[str, Any]()
    if tenant is not None:
        clauses.append("Tenant eq @tenant")
        params["tenant"] = tenant
    if queue is not None:
        clauses.append("PartitionKey eq @pk")
        params["pk"] = codec.partition(queue)
    return " and ".join(clauses), params


async def read(table: Table, tenant: str | None, queue: str | None) -> list[DayCount]:
    """The count rows plus the ended jobs still stored: two scans."""
    found = [row async for row in _counts(table, tenant, queue)]
    where, params = _filter(f"Kind eq 'job' and ({_ENDED})", tenant, queue)
    live: dict[tuple[str, date, State], int] = {}
    rows = table.query_entities(where, parameters=params, select=["Queue", "State", "FinishedAt"])
    async for e in rows:
        finished = codec.from_ts(e.get("FinishedAt"))
        if finished is not None:
            cell = (e["Queue"], finished.astimezone(UTC).date(), State(e["State"]))
            live[cell] = live.get(cell, 0) + 1
    return found + [DayCount(q, d, s, n) for (q, d, s), n in live.items()]


async def _counts(table: Table, tenant: str | None, queue: str | None) -> AsyncIterator[DayCount]:
    where, params = _filter("Kind eq 'stat'", tenant, queue)
    async for e in table.query_entities(where, parameters=params):
        day = date.fromisoformat(e["Day"])
        yield DayCount(e["Queue"], day, State(e["Outcome"]), _value(e["Count"]))
