"""Schedules: stored per (tenant, id); firing is a compare-and-set on the next
firing time, so of several schedulers exactly one advances each firing."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from offload.backends import Backend
from offload.job import Schedule

from .helpers import opened_clone

T0 = datetime(2030, 1, 1, 12, 0, 0, tzinfo=UTC)


def schedule(sid: str = "nightly", tenant: str = "default", **fields: object) -> Schedule:
    values: dict[str, object] = {
        "id": sid, "task": "tests.echo", "payload": b'{"x":1}', "cron": "0 3 * * *",
        "next_run_at": T0, "tenant": tenant,
    }  # fmt: skip
    values.update(fields)
    return Schedule(**values)  # type: ignore[arg-type]


async def test_upsert_then_get_round_trips_every_field(backend: Backend) -> None:
    stored = await backend.schedule_upsert(schedule(
        timezone="Europe/Berlin", queue="reports", priority=5, max_attempts=7, timeout=2.5,
        unique=True, meta={"owner": "ops"},
    ))  # fmt: skip
    got = await backend.schedule_get("nightly", "default")
    assert got is not None
    for s in (stored, got):
        assert (s.id, s.tenant, s.task, s.payload, s.cron, s.timezone) == (
            "nightly", "default", "tests.echo", b'{"x":1}', "0 3 * * *", "Europe/Berlin"
        )  # fmt: skip
        assert (s.queue, s.priority, s.max_attempts, s.timeout, s.unique) == (
            "reports", 5, 7, 2.5, True
        )  # fmt: skip
        assert s.next_run_at == T0
        assert s.meta == {"owner": "ops"}
        assert s.created_at is not None
        assert s.updated_at is not None
        assert s.last_run_at is None
        assert s.last_job_id is None


async def test_upsert_replaces_the_rule_and_keeps_history(backend: Backend) -> None:
    await backend.schedule_upsert(schedule())
    assert await backend.schedule_advance("nightly", "default", T0, T0 + timedelta(days=1), "j1")
    first = await backend.schedule_get("nightly", "default")
    assert first is not None
    replaced = await backend.schedule_upsert(schedule(cron="*/5 * * * *", next_run_at=T0))
    assert replaced.cron == "*/5 * * * *"
    assert replaced.next_run_at == T0
    assert replaced.created_at == first.created_at
    assert (replaced.last_run_at, replaced.last_job_id) == (T0, "j1")
    assert len(await backend.schedule_list()) == 1


async def test_schedules_are_scoped_by_tenant(backend: Backend) -> None:
    await backend.schedule_upsert(schedule("s", "acme", cron="1 * * * *"))
    await backend.schedule_upsert(schedule("s", "globex", cron="2 * * * *"))
    await backend.schedule_upsert(schedule("a", "globex"))
    acme = await backend.schedule_get("s", "acme")
    assert acme is not None
    assert acme.cron == "1 * * * *"
    assert await backend.schedule_get("a", "acme") is None
    assert [(s.tenant, s.id) for s in await backend.schedule_list()] == [
        ("acme", "s"), ("globex", "a"), ("globex", "s")
    ]  # fmt: skip
    assert [s.id for s in await backend.schedule_list("globex")] == ["a", "s"]
    assert await backend.schedule_delete("s", "acme") is True
    assert await backend.schedule_delete("s", "acme") is False
    assert [(s.tenant, s.id) for s in await backend.schedule_list()] == [
        ("globex", "a"), ("globex", "s")
    ]  # fmt: skip


async def test_due_returns_schedules_up_to_the_time_earliest_first(backend: Backend) -> None:
    await backend.schedule_upsert(schedule("late", next_run_at=T0 + timedelta(seconds=2)))
    await backend.schedule_upsert(schedule("early", "acme", next_run_at=T0))
    await backend.schedule_upsert(schedule("future", next_run_at=T0 + timedelta(hours=1)))
    await backend.schedule_upsert(schedule("done", next_run_at=None))
    due = await backend.schedule_due(T0 + timedelta(seconds=2))
    assert [(s.tenant, s.id) for s in due] == [("acme", "early"), ("default", "late")]
    assert [s.id for s in await backend.schedule_due(T0 + timedelta(seconds=2), limit=1)] == [
        "early"
    ]
    assert await backend.schedule_due(T0 - timedelta(seconds=1)) == []


async def test_advance_is_a_compare_and_set_on_the_firing_time(backend: Backend) -> None:
    await backend.schedule_upsert(schedule())
    nxt = T0 + timedelta(days=1)
    assert await backend.schedule_advance("nightly", "default", T0, nxt, "job-1") is True
    assert await backend.schedule_advance("nightly", "default", T0, nxt, "job-2") is False
    got = await backend.schedule_get("nightly", "default")
    assert got is not None
    assert (got.next_run_at, got.last_run_at, got.last_job_id) == (nxt, T0, "job-1")
    assert await backend.schedule_due(nxt - timedelta(seconds=1)) == []


async def test_a_skipped_firing_keeps_the_last_job(backend: Backend) -> None:
    await backend.schedule_upsert(schedule())
    await backend.schedule_advance("nightly", "default", T0, T0 + timedelta(minutes=1), "j1")
    t1 = T0 + timedelta(minutes=1)
    assert await backend.schedule_advance("nightly", "default", t1, None, None) is True
    got = await backend.schedule_get("nightly", "default")
    assert got is not None
    assert (got.next_run_at, got.last_run_at, got.last_job_id) == (None, t1, "j1")


async def test_concurrent_advances_of_one_firing_have_one_winner(backend: Backend) -> None:
    await backend.schedule_upsert(schedule())
    async with opened_clone(backend) as other:
        results = await asyncio.gather(*(
            b.schedule_advance("nightly", "default", T0, T0 + timedelta(days=1), f"j{i}")
            for i, b in enumerate([backend, other] * 5)
        ))  # fmt: skip
    assert results.count(True) == 1


async def test_unknown_schedule_cannot_be_advanced(backend: Backend) -> None:
    assert await backend.schedule_advance("nope", "default", T0, None, None) is False
    assert await backend.schedule_get("nope", "default") is None
