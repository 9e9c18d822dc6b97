"""Jobs that wait for other jobs: checked at enqueue, moved on once their parents end.

A dependent is stored like any job: its parents' ids in ``meta["depends_on"]``, its
policy in ``meta["on_parent_failure"]``, waiting in ``scheduled`` with a due time
(``WAITING_UNTIL``) no lease reaches, so no backend needs another table or index
and every lease query already skips it. Each dependent belongs to a batch (its
workflow's, a batch the caller named, or one made for it at enqueue): a batch is
what a worker is told about when one of its jobs ends (the recorder touches it)
and what the batch sweep walks, so ``advance`` runs promptly after a parent of the
same batch ends, and within one sweep interval after any other parent ends or a
worker died between a parent's end and the release.

``advance`` may run in many workers at once: it decides from what it read, and
``Backend.job_release`` applies RELEASE or CANCEL_DEPENDENT only while the job
still waits in ``scheduled``, so each dependent moves on exactly once.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from offload import event_data as ed
from offload import lifecycle as lc
from offload.backends.base import Backend
from offload.errors import DependencyError
from offload.ids import new_id
from offload.job import Job, JobQuery, NewBatch, NewJob
from offload.lifecycle import State, Transition

WAITING_UNTIL = datetime(2200, 1, 1, tzinfo=UTC)
"""The due time of a dependent not yet released: past any real schedule, and
below 2**53 microseconds so every backend stores it exactly enough."""

POLICIES = frozenset({"cancel", "run"})
_FAILED = frozenset({State.DEAD, State.CANCELLED})
_PAGE = 500


def is_waiting(job: Job) -> bool:
    """Still waiting for its parents (not merely scheduled for later)."""
    return (
        job.state is State.SCHEDULED
        and bool(job.depends_on)
        and job.run_at >= WAITING_UNTIL - timedelta(days=1)
    )


def parent_ids(items: Iterable[Job | NewJob | str]) -> tuple[str, ...]:
    """Ids of what ``depends_on=`` was given: jobs, prepared jobs or ids."""
    out: list[str] = []
    for item in items:
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, Job | NewJob):
            out.append(item.id)
        else:
            raise DependencyError(f"depends_on takes jobs or job ids, not {item!r}")
    return tuple(dict.fromkeys(out))


# at enqueue -----------------------------------------------------------------------


async def prepare(backend: Backend, jobs: Sequence[NewJob]) -> list[NewJob]:
    """The jobs as stored: dependents waiting, each in a batch; refuses unknown
    parents, cycles and unknown policies before anything is stored."""
    _check_policies(jobs)
    check_acyclic(jobs)
    await _check_parents(backend, jobs)
    batches = await _own_batches(backend, jobs)
    return [_placed(job, batches) for job in jobs]


def _check_policies(jobs: Sequence[NewJob]) -> None:
    for job in jobs:
        if job.on_parent_failure not in POLICIES:
            raise DependencyError(
                f"on_parent_failure must be 'cancel' or 'run', not {job.on_parent_failure!r}"
            )


def check_acyclic(jobs: Sequence[NewJob]) -> None:
    """Refuse a graph in which a job waits, through its parents, for itself.
    Parents outside the call exist already, so only edges inside it can loop."""
    edges = {j.id: [p for p in j.depends_on if p != j.id] for j in jobs}
    for job in jobs:
        if job.id in job.depends_on:
            raise DependencyError(f"job {job.id} ({job.task}) depends on itself")
    done: set[str] = set()
    for start in edges:
        _walk(start, edges, done)


def _walk(start: str, edges: Mapping[str, list[str]], done: set[str]) -> None:
    """Depth-first from ``start`` without recursion (graphs may be deep); each
    node's parents are walked through one iterator, so a join of N is O(N)."""
    if start in done:
        return
    path: list[str] = [start]
    on_path: set[str] = {start}
    stack: list[Iterator[str]] = [iter(edges[start])]
    while stack:
        child = next((p for p in stack[-1] if p in edges and p not in done), None)
        if child is None:
            stack.pop()
            node = path.pop()
            on_path.discard(node)
            done.add(node)
            continue
        if child in on_path:
            cycle = " -> ".join([*path[path.index(child) :], child])
            raise DependencyError(f"dependency cycle: {cycle}")
        path.append(child)
        on_path.add(child)
        stack.append(iter(edges[child]))


async def _check_parents(backend: Backend, jobs: Sequence[NewJob]) -> None:
    here = {j.id for j in jobs}
    for job in jobs:
        for parent in job.depends_on:
            if parent in here:
                continue
            found = await backend.job_get(parent, job.tenant)
            if found is None:
                raise DependencyError(
                    f"job {job.id} ({job.task}) depends on {parent}, "
                    f"which is not a job of tenant {job.tenant!r}"
                )


async def _own_batches(backend: Backend, jobs: Sequence[NewJob]) -> dict[str, str]:
    """A batch per tenant for dependents that have none, holding their parents
    of the same call too, so a parent's end is told to the batch at once.
    Returns job id -> batch id for the jobs to place."""
    here = {j.id: j for j in jobs}
    loose = [j for j in jobs if j.depends_on and j.batch_id is None]
    placed: dict[str, str] = {}
    by_tenant: dict[str, str] = {}
    for job in loose:
        if job.tenant not in by_tenant:
            batch = NewBatch(id=new_id(), tenant=job.tenant, meta={"dependencies": True})
            by_tenant[job.tenant] = (await backend.batch_create(batch)).id
        placed[job.id] = by_tenant[job.tenant]
        for parent in job.depends_on:
            found = here.get(parent)
            if found is not None and found.batch_id is None and found.tenant == job.tenant:
                placed[parent] = by_tenant[job.tenant]
    return placed


def _placed(job: NewJob, batches: Mapping[str, str]) -> NewJob:
    batch_id = batches.get(job.id, job.batch_id)
    if not job.depends_on:
        return job if batch_id == job.batch_id else dataclasses.replace(job, batch_id=batch_id)
    meta = {**job.meta, "depends_on": list(job.depends_on),
            "on_parent_failure": job.on_parent_failure}  # fmt: skip
    return dataclasses.replace(job, batch_id=batch_id, run_at=WAITING_UNTIL, meta=meta)


# after a parent ended -------------------------------------------------------------


async def advance(backend: Backend, batch_id: str) -> int:
    """Release (or cancel) every waiting dependent of the batch whose parents
    have all ended; a cancel cascades to its own dependents in the same call.
    Returns how many jobs this call moved on."""
    known = {j.id: j for j in await batch_jobs(backend, batch_id)}
    waiting = [j for j in known.values() if is_waiting(j)]
    if not waiting:
        return 0
    await _read_outside(backend, waiting, known)
    children: dict[str, list[Job]] = {}
    for job in waiting:
        for parent in job.depends_on:
            children.setdefault(parent, []).append(job)
    moved = 0
    todo = list(waiting)
    while todo:
        job = todo.pop()
        decision = decide(job, known)
        if decision is None:
            continue
        done = await backend.job_release(job.id, *decision)
        if done is None:
            continue
        moved += 1
        known[job.id] = done
        if done.state is State.CANCELLED:
            todo.extend(children.get(job.id, []))
    return moved


async def batch_jobs(backend: Backend, batch_id: str) -> list[Job]:
    """Every job of the batch, read page by page."""
    out: list[Job] = []
    before: str | None = None
    while True:
        page = await backend.job_list(JobQuery(batch_id=batch_id, before_id=before, limit=_PAGE))
        out.extend(page)
        if len(page) < _PAGE:
            return out
        before = page[-1].id


async def _read_outside(backend: Backend, waiting: list[Job], known: dict[str, Job]) -> None:
    for job in waiting:
        for parent in job.depends_on:
            if parent not in known:
                found = await backend.job_get(parent)
                if found is not None:
                    known[parent] = found


def decide(job: Job, known: Mapping[str, Job]) -> tuple[Transition, dict[str, Any]] | None:
    """What to do with a waiting dependent given its parents as read: nothing
    while one has not ended; CANCEL_DEPENDENT when one ended dead or cancelled
    under the "cancel" policy; RELEASE otherwise. A parent no longer stored was
    purged, which only happens to ended jobs: it counts as ended."""
    states: dict[str, str] = {}
    for parent_id in job.depends_on:
        parent = known.get(parent_id)
        if parent is not None and not parent.ended:
            return None
        states[parent_id] = parent.state.value if parent is not None else "purged"
    if job.meta.get("on_parent_failure", "cancel") == "cancel":
        for parent_id, state in states.items():
            if state in _FAILED:
                return lc.CANCEL_DEPENDENT, ed.parent_failed(parent_id, state)
    return lc.RELEASE, ed.released(states)


async def parents_of(backend: Backend, job: Job) -> dict[str, Job]:
    """The job's parents as stored now, for ``ctx.parents``."""
    out: dict[str, Job] = {}
    for parent_id in job.depends_on:
        found = await backend.job_get(parent_id)
        if found is not None:
            found.serializer = job.serializer
            out[parent_id] = found
    return out
