"""The worker registry: who is alive, with which jobs, on the backend's clock."""

from __future__ import annotations

from datetime import UTC, datetime

from offload.backends import Backend
from offload.job import WorkerInfo

from .helpers import eventually, near


def info(worker_id: str, *job_ids: str) -> WorkerInfo:
    return WorkerInfo(
        id=worker_id, hostname="host-1", pid=4242, queues=["default", "high"],
        concurrency=8, started_at=datetime(2026, 1, 1, tzinfo=UTC), job_ids=list(job_ids),
        meta={"version": "1"},
    )  # fmt: skip


async def test_a_beat_is_listed_with_everything_it_said(backend: Backend) -> None:
    await backend.worker_beat(info("w2", "j1", "j2"), ttl=30)
    await backend.worker_beat(info("w1"), ttl=30)
    listed = await backend.worker_list()
    assert [w.id for w in listed] == ["w1", "w2"]
    w2 = listed[1]
    assert (w2.hostname, w2.pid, w2.queues, w2.concurrency) == (
        "host-1", 4242, ["default", "high"], 8
    )  # fmt: skip
    assert w2.started_at == datetime(2026, 1, 1, tzinfo=UTC)
    assert (w2.job_ids, w2.meta) == (["j1", "j2"], {"version": "1"})
    assert near(w2.last_seen_at, await backend.now())


async def test_a_later_beat_replaces_the_jobs(backend: Backend) -> None:
    await backend.worker_beat(info("w1", "j1"), ttl=30)
    await backend.worker_beat(info("w1", "j3"), ttl=30)
    [w1] = await backend.worker_list()
    assert w1.job_ids == ["j3"]


async def test_a_silent_worker_drops_out_and_a_removed_one_at_once(backend: Backend) -> None:
    await backend.worker_beat(info("gone"), ttl=0.2)
    await backend.worker_beat(info("stays"), ttl=30)
    await backend.worker_beat(info("stopped"), ttl=30)
    await backend.worker_remove("stopped")
    await backend.worker_remove("never-was")

    async def only_stays() -> bool:
        return [w.id for w in await backend.worker_list()] == ["stays"]

    await eventually(only_stays, what="the silent worker dropped")
