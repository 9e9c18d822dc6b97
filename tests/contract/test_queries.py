"""Reading jobs: get, list (filters, newest first, paging), counts, tenant scoping."""

from __future__ import annotations

import pytest

from offload.backends import Backend
from offload.job import Job, JobQuery
from offload.lifecycle import State

from .helpers import BOOM, enqueue, enqueue_and_lease, lease_one, must_get, new_job

UNKNOWN = "00000000-0000-7000-8000-000000000000"


async def _ids(backend: Backend, **query: object) -> list[str]:
    return [j.id for j in await backend.job_list(JobQuery(**query))]  # type: ignore[arg-type]


async def _mixed(backend: Backend) -> dict[str, Job]:
    """A small population across tenants, queues, tasks and states."""
    jobs = {
        "a_mail": await enqueue(backend, tenant="acme", queue="mail", task="t.send"),
        "a_sched": await enqueue(backend, tenant="acme", queue="mail", task="t.send", delay=3600),
        "a_run": await enqueue_and_lease(backend, tenant="acme", queue="img", task="t.resize"),
        "g_mail": await enqueue(backend, tenant="globex", queue="mail", task="t.send"),
    }
    g_dead = await enqueue_and_lease(backend, tenant="globex", queue="img", task="t.resize")
    assert await backend.job_fail(g_dead.lease, BOOM, None) is not None
    jobs["g_dead"] = g_dead
    return jobs


def _newest_first(*jobs: Job) -> list[str]:
    return sorted((j.id for j in jobs), reverse=True)


async def test_job_get_with_and_without_tenant(backend: Backend) -> None:
    job = await enqueue(backend, tenant="acme")
    assert (await must_get(backend, job.id)).id == job.id
    assert (await must_get(backend, job.id, "acme")).id == job.id
    assert await backend.job_get(job.id, "globex") is None
    assert await backend.job_get(UNKNOWN) is None


async def test_list_is_newest_first(backend: Backend) -> None:
    jobs = [await enqueue(backend) for _ in range(6)]
    assert await _ids(backend) == _newest_first(*jobs)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"tenant": "acme"}, ["a_mail", "a_sched", "a_run"]),
        ({"tenant": "globex"}, ["g_mail", "g_dead"]),
        ({"queue": "mail"}, ["a_mail", "a_sched", "g_mail"]),
        ({"task": "t.resize"}, ["a_run", "g_dead"]),
        ({"states": frozenset({State.QUEUED, State.SCHEDULED})}, ["a_mail", "a_sched", "g_mail"]),
        ({"states": frozenset({State.DEAD})}, ["g_dead"]),
        ({"states": frozenset({State.RUNNING}), "tenant": "acme"}, ["a_run"]),
        ({"queue": "img", "tenant": "acme", "task": "t.send"}, []),
        ({"tenant": "initech"}, []),
    ],
)
async def test_list_filters(
    backend: Backend, query: dict[str, object], expected: list[str]
) -> None:
    jobs = await _mixed(backend)
    assert await _ids(backend, **query) == _newest_first(*(jobs[k] for k in expected))


async def test_list_pages_with_before_id(backend: Backend) -> None:
    jobs = await backend.job_enqueue_many([new_job() for _ in range(7)])
    everything = _newest_first(*jobs)
    pages: list[list[str]] = []
    before: str | None = None
    while page := await _ids(backend, limit=3, before_id=before):
        pages.append(page)
        before = page[-1]
    assert [len(p) for p in pages] == [3, 3, 1]
    assert [i for p in pages for i in p] == everything


async def test_list_limit(backend: Backend) -> None:
    jobs = await backend.job_enqueue_many([new_job() for _ in range(5)])
    assert await _ids(backend, limit=2) == _newest_first(*jobs)[:2]


async def test_counts_per_queue_and_state(backend: Backend) -> None:
    await _mixed(backend)
    counts = await backend.job_counts()
    assert {k: v for k, v in counts.items() if v} == {
        ("mail", State.QUEUED): 2,
        ("mail", State.SCHEDULED): 1,
        ("img", State.RUNNING): 1,
        ("img", State.DEAD): 1,
    }


async def test_counts_of_one_tenant(backend: Backend) -> None:
    await _mixed(backend)
    counts = await backend.job_counts("globex")
    assert {k: v for k, v in counts.items() if v} == {
        ("mail", State.QUEUED): 1,
        ("img", State.DEAD): 1,
    }
    assert not any((await backend.job_counts("initech")).values())


async def test_counts_follow_transitions(backend: Backend) -> None:
    await backend.job_enqueue_many([new_job() for _ in range(3)])
    job = await lease_one(backend)
    await backend.job_complete_many([(job.lease, None)])
    counts = await backend.job_counts()
    assert counts.get(("default", State.QUEUED), 0) == 2
    assert counts.get(("default", State.SUCCEEDED), 0) == 1
    assert counts.get(("default", State.RUNNING), 0) == 0


async def test_nothing_crosses_tenants(backend: Backend) -> None:
    waiting = await enqueue(backend, tenant="acme", delay=3600)
    dead = await enqueue_and_lease(backend, tenant="acme")
    assert await backend.job_fail(dead.lease, BOOM, None) is not None
    before = [await must_get(backend, j.id) for j in (waiting, dead)]
    assert await backend.job_get(waiting.id, "globex") is None
    assert await backend.job_cancel(waiting.id, "globex") is None
    assert await backend.job_redrive(dead.id, "globex") is None
    assert await backend.job_list(JobQuery(tenant="globex")) == []
    assert [await must_get(backend, j.id) for j in (waiting, dead)] == before
    assert await backend.job_cancel(waiting.id, "acme") is not None
    assert await backend.job_redrive(dead.id, "acme") is not None


async def test_returned_jobs_are_snapshots(backend: Backend) -> None:
    job = await enqueue(backend, meta={"trace": {"id": "t-1"}})
    job.meta["trace"]["id"] = "changed"
    job.meta["extra"] = True
    fetched = await must_get(backend, job.id)
    fetched.meta["trace"]["id"] = "changed again"
    listed = await backend.job_list(JobQuery())
    listed[0].meta.clear()
    assert (await must_get(backend, job.id)).meta == {"trace": {"id": "t-1"}}
