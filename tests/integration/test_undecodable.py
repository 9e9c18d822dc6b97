"""One row that cannot be decoded costs that job, not the worker (issue 13,
item 13): it is dead-lettered with the reason, the healthy jobs of the same
lease run, a burst worker exits, and reading it over Python and HTTP works.

Rows are broken by hand, the way a bad migration or another program would."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from starlette.testclient import TestClient

from offload import App, JobQuery, State
from offload.backends import Backend
from offload.web import create_app
from offload.worker import Worker

Breaker = Callable[[Backend, str], Awaitable[None]]


async def _sqlite_meta(backend: Backend, job_id: str) -> None:
    path = backend.path  # type: ignore[attr-defined]
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE jobs SET meta = 'not json {' WHERE id = ?", (job_id,))


async def _redis_meta(backend: Backend, job_id: str) -> None:
    await backend._redis().hset(backend._keys.job(job_id), "meta", b"not json {")  # type: ignore[attr-defined]


async def _postgres_meta(backend: Backend, job_id: str) -> None:
    # jsonb holds only JSON; a value that is not an object is what can go wrong.
    async with backend._pool.connection() as conn:  # type: ignore[attr-defined]
        await conn.execute(
            f"UPDATE {backend._schema}.jobs SET meta = '[1, 2]'::jsonb WHERE id = %s",  # type: ignore[attr-defined]
            (job_id,),
        )


BREAKERS: dict[str, Breaker] = {
    "sqlite": _sqlite_meta,
    "redis": _redis_meta,
    "postgres": _postgres_meta,
}


@pytest.fixture(params=list(BREAKERS))
def broken(request: pytest.FixtureRequest, tmp_path: Any) -> tuple[str, Breaker]:
    from tests.conftest import BACKENDS

    return BACKENDS[request.param](tmp_path, request), BREAKERS[request.param]


async def test_an_undecodable_row_is_dead_lettered_and_the_rest_run(
    broken: tuple[str, Breaker],
) -> None:
    url, breaker = broken
    app = App(url)
    ran: list[int] = []

    @app.task(name="tests.work")
    def work(n: int) -> int:
        ran.append(n)
        return n

    try:
        jobs = [await work.enqueue_async(n) for n in range(3)]
        await breaker(await app.backend(), jobs[1].id)
        worker = Worker(app, burst=True, handle_signals=False, poll_interval=0.05)
        await asyncio.wait_for(worker.run(), timeout=60)  # a burst that stalls never returns
        bad = await app.get_job_async(jobs[1].id)
        assert bad.state is State.DEAD
        assert bad.error is not None
        assert bad.error.type == "UndecodableJob"
        assert "meta" in bad.error.message
        assert sorted(ran) == [0, 2]
        for job in (jobs[0], jobs[2]):
            assert (await app.get_job_async(job.id)).state is State.SUCCEEDED
    finally:
        await app.close_async()


async def test_an_undecodable_row_reads_over_http_and_the_dashboard(
    broken: tuple[str, Breaker],
) -> None:
    url, breaker = broken
    app = App(url)

    @app.task(name="tests.work")
    def work(n: int) -> int:
        return n

    job = await work.enqueue_async(1)
    await breaker(await app.backend(), job.id)
    await app.close_async()

    def read() -> tuple[int, Any, int]:
        with TestClient(create_app(App(url)), base_url="http://127.0.0.1") as client:
            api = client.get(f"/api/v1/jobs/{job.id}")
            page = client.get(f"/jobs/{job.id}")
            return api.status_code, api.json(), page.status_code

    status, body, page = await asyncio.to_thread(read)
    assert status == 200
    assert body["id"] == job.id
    assert "meta" in body["decode_errors"]["record"]
    assert page == 200


async def _sqlite_state(backend: Backend, job_id: str) -> None:
    with sqlite3.connect(backend.path) as conn:  # type: ignore[attr-defined]
        conn.execute("UPDATE jobs SET state = 'bogus' WHERE id = ?", (job_id,))


async def _redis_state(backend: Backend, job_id: str) -> None:
    await backend._redis().hset(backend._keys.job(job_id), "state", b"bogus")  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", ["sqlite", "redis"])
async def test_an_unknown_state_reads_as_an_undecodable_job(
    name: str, tmp_path: Any, request: pytest.FixtureRequest
) -> None:
    from tests.conftest import BACKENDS

    app = App(BACKENDS[name](tmp_path, request))

    @app.task(name="tests.work")
    def work(n: int) -> int:
        return n

    try:
        job = await work.enqueue_async(1)
        await {"sqlite": _sqlite_state, "redis": _redis_state}[name](await app.backend(), job.id)
        read = await app.get_job_async(job.id)
        assert read.decode_error is not None
        assert "bogus" in read.decode_error
        listed = await app.list_jobs_async(JobQuery(limit=10))
        assert [j.id for j in listed] == [job.id]
    finally:
        await app.close_async()
