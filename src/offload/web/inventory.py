"""Views the contract has no direct read for, derived from what it has.

Workers are the ``worker_id`` of running jobs and tenants are the owners of
stored jobs, so both come from paging through ``job_list``. The scan is capped: a
store with more jobs than ``SCAN_CAP`` gives a partial answer marked
``complete: false`` rather than a slow one.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

from offload.app import App
from offload.backends.base import QueueCounts
from offload.job import Job, JobQuery, WorkerInfo
from offload.lifecycle import State
from offload.task import CommandPayload, SignaturePayload, Task
from offload.web.openapi import BOOL, COUNTS, INT, STR, TIME, Component, array, obj

SCAN_CAP = 10_000
PAGE = 500


@dataclass(frozen=True, slots=True)
class Scan:
    jobs: list[Job]
    complete: bool


async def scan(app: App, tenant: str | None, states: frozenset[State] | None) -> Scan:
    jobs: list[Job] = []
    before: str | None = None
    while len(jobs) < SCAN_CAP:
        query = JobQuery(tenant=tenant, states=states, before_id=before, limit=PAGE)
        page = await app.list_jobs_async(query)
        jobs.extend(page)
        if len(page) < PAGE:
            return Scan(jobs, True)
        before = page[-1].id
    return Scan(jobs, False)


def queue_rows(counts: QueueCounts) -> list[dict[str, Any]]:
    by_queue: dict[str, dict[str, int]] = defaultdict(lambda: {s.value: 0 for s in State})
    for (queue, state), n in counts.items():
        by_queue[queue][state.value] += n
    return [{"name": q, "counts": c, "total": sum(c.values())} for q, c in sorted(by_queue.items())]


def worker_rows(
    running: list[Job], registry: list[WorkerInfo], *, show_idle: bool, admin: bool = True
) -> list[dict[str, Any]]:
    """Workers from their running jobs (what the caller may see), joined with the
    registry's live entries; idle registered workers only when ``show_idle``
    (an admin), since a tenant owns jobs, not workers. A tenant sees of a worker
    only what its own jobs tell: not its host, pid, or the queues other tenants
    share with it."""
    grouped: dict[str, list[Job]] = defaultdict(list)
    for job in running:
        if job.worker_id:
            grouped[job.worker_id].append(job)
    live = {w.id: w for w in registry}
    ids = set(grouped) | (set(live) if show_idle else set())
    rows = []
    for worker in sorted(ids):
        jobs = grouped.get(worker, [])
        info = live.get(worker) if admin else None
        rows.append({
            "id": worker, "running": len(jobs),
            "queues": info.queues if info else sorted({j.queue for j in jobs}),
            "jobs": [j.id for j in jobs], "alive": worker in live,
            "hostname": info.hostname if info else None, "pid": info.pid if info else None,
            "concurrency": info.concurrency if info else None,
            "started_at": info.started_at if info else None,
            "last_seen_at": info.last_seen_at if info else None,
        })  # fmt: skip
    return rows


def tenant_rows(jobs: list[Job]) -> list[dict[str, Any]]:
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for job in jobs:
        counts[job.tenant][job.state.value] += 1
    return [
        {"name": t, "jobs": sum(c.values()), "counts": {s.value: c[s.value] for s in State}}
        for t, c in sorted(counts.items())
    ]


def task_row(task: Task[Any]) -> dict[str, Any]:
    return {
        "name": task.name,
        "queue": task.queue,
        "priority": task.priority,
        "max_attempts": task.max_attempts,
        "timeout": task.timeout,
        "args_schema": _args_schema(task),
    }


def _args_schema(task: Task[Any]) -> dict[str, Any] | None:
    """The JSON schema of the arguments, or ``None`` for types pydantic cannot
    describe (an arbitrary class is still a valid argument type)."""
    try:
        if isinstance(task.payload, SignaturePayload):
            schema: dict[str, Any] = task.payload.model.model_json_schema()
            return schema
        if isinstance(task.payload, CommandPayload):
            schema = task.payload.adapter.json_schema()
            return schema
    except Exception:
        return None
    return None


# schemas ---------------------------------------------------------------------------

QUEUES = Component("Queues", obj({"queues": array(obj({"name": STR, "counts": COUNTS,
                                                        "total": INT}))}))  # fmt: skip
WORKER_ROW = obj(
    {
        "id": STR,
        "running": INT,
        "queues": array(STR),
        "jobs": array(STR),
        "alive": BOOL,
        "hostname": {"type": ["string", "null"]},
        "pid": {"type": ["integer", "null"]},
        "concurrency": {"type": ["integer", "null"]},
        "started_at": TIME,
        "last_seen_at": TIME,
    }
)
WORKERS = Component("Workers", obj({"complete": BOOL, "workers": array(WORKER_ROW)}))
TENANT_ROW = obj({"name": STR, "jobs": INT, "counts": COUNTS})
TENANTS = Component("Tenants", obj({"complete": BOOL, "tenants": array(TENANT_ROW)}))
TASK_ROW = obj(
    {
        "name": STR,
        "queue": STR,
        "priority": INT,
        "max_attempts": INT,
        "timeout": {"type": ["number", "null"]},
        "args_schema": {"type": ["object", "null"]},
    }
)
TASKS = Component("Tasks", obj({"tasks": array(TASK_ROW)}))
