"""The SQLite backend across OS processes: several workers leasing one file, jobs
outliving a ``kill -9`` of the process that wrote them, and the file's settings."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Sequence
from multiprocessing.synchronize import Barrier
from pathlib import Path

import pytest
from uuid_utils import uuid7

from offload import lifecycle as lc
from offload.backends import create_backend
from offload.backends.sqlite import SCHEMA_VERSION, SQLiteBackend, _sql
from offload.errors import BackendError, ConfigurationError
from offload.job import JobQuery, NewJob
from offload.lifecycle import State

DEADLINE = 60.0
PROCESSES = 4
JOBS = 600


def _new(queue: str = "default", unique_key: str | None = None) -> NewJob:
    return NewJob(id=str(uuid7()), task="tests.noop", payload=b"{}", queue=queue,
                  unique_key=unique_key)  # fmt: skip


async def _enqueue(url: str, count: int) -> list[str]:
    backend = create_backend(url)
    await backend.open()
    try:
        return [j.id for j in await backend.job_enqueue_many([_new() for _ in range(count)])]
    finally:
        await backend.close()


def _drain(url: str, barrier: Barrier, out: multiprocessing.SimpleQueue[list[str]]) -> None:
    """One worker process: lease small batches until the queue is empty."""
    out.put(asyncio.run(_drain_async(url, barrier)))


async def _drain_async(url: str, barrier: Barrier) -> list[str]:
    backend = create_backend(url)
    await backend.open()
    barrier.wait(DEADLINE)  # every process leases from the same moment on
    taken: list[str] = []
    try:
        while jobs := await backend.job_lease(f"w{os.getpid()}", ["default"], 7, 60.0):
            taken += [j.id for j in jobs]
            flags = await backend.job_complete_many([(j.lease, None) for j in jobs])
            assert all(flags), "a lease this process was handed had been lost"
    finally:
        await backend.close()
    return taken


def _run_workers(url: str) -> list[list[str]]:
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(PROCESSES)
    out: multiprocessing.SimpleQueue[list[str]] = ctx.SimpleQueue()
    procs = [ctx.Process(target=_drain, args=(url, barrier, out)) for _ in range(PROCESSES)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(DEADLINE)
    assert [p.exitcode for p in procs] == [0] * PROCESSES
    return [out.get() for _ in procs]


@pytest.mark.slow
def test_processes_leasing_one_file_take_every_job_exactly_once(sqlite_url: str) -> None:
    ids = asyncio.run(_enqueue(sqlite_url, JOBS))
    per_process = _run_workers(sqlite_url)
    taken = [job_id for batch in per_process for job_id in batch]
    assert sorted(taken) == sorted(ids)  # none lost, none twice
    assert sum(1 for batch in per_process if batch) >= 2, "the processes did not overlap"
    asyncio.run(_assert_each_ran_once(sqlite_url, ids))


async def _assert_each_ran_once(url: str, ids: Sequence[str]) -> None:
    backend = create_backend(url)
    await backend.open()
    try:
        jobs = await backend.job_list(JobQuery(limit=len(ids) + 1))
        assert {(j.state, j.attempts) for j in jobs} == {(State.SUCCEEDED, 1)}
        once = [*lc.ENQUEUE.events, *lc.START.events, *lc.SUCCEED.events]
        for job_id in ids[:: len(ids) // 20]:
            assert [e.kind for e in await backend.event_list(job_id)] == once
    finally:
        await backend.close()


WRITER = textwrap.dedent(
    """
    import asyncio, json, sys
    from uuid_utils import uuid7
    from offload.backends import create_backend
    from offload.job import NewJob

    async def main():
        backend = create_backend(sys.argv[1])
        await backend.open()
        news = [NewJob(id=str(uuid7()), task="tests.noop", payload=b"{}") for _ in range(50)]
        ids = [j.id for j in await backend.job_enqueue_many(news)]
        leased = await backend.job_lease("doomed", ["default"], 10, 3600.0)
        print(json.dumps({"ids": ids, "leased": [j.id for j in leased]}), flush=True)
        await asyncio.Event().wait()  # killed here, the connection still open

    asyncio.run(main())
    """
)


def test_accepted_jobs_survive_a_kill_9_of_the_writer(sqlite_url: str) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, sqlite_url], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        written = json.loads(proc.stdout.readline())
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(DEADLINE)
    assert proc.returncode == -signal.SIGKILL
    states = asyncio.run(_states(sqlite_url, written["ids"]))
    leased = set(written["leased"])
    assert len(leased) == 10
    assert states == {i: State.RUNNING if i in leased else State.QUEUED for i in written["ids"]}


async def _states(url: str, ids: Sequence[str]) -> dict[str, State]:
    backend = create_backend(url)
    await backend.open()
    try:
        return {i: job.state for i in ids if (job := await backend.job_get(i)) is not None}
    finally:
        await backend.close()


async def test_a_new_instance_sees_everything_after_a_reopen(sqlite_url: str) -> None:
    first = create_backend(sqlite_url)
    await first.open()
    stored = await first.job_enqueue_many([_new(queue=f"q{i % 3}") for i in range(30)])
    await first.close()
    second = create_backend(sqlite_url)
    await second.open()
    try:
        assert [await second.job_get(j.id) for j in stored] == stored
        leased = await second.job_lease("w", ["q0", "q1", "q2"], 100, 30.0)
        assert sorted(j.id for j in leased) == sorted(j.id for j in stored)
    finally:
        await second.close()


async def test_the_file_is_in_wal_mode_at_the_current_schema_version(sqlite_url: str) -> None:
    backend = SQLiteBackend(sqlite_url)
    await backend.open()
    await backend.close()
    with sqlite3.connect(backend.path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"jobs", "events"} <= tables
    assert SCHEMA_VERSION >= 1


async def test_a_file_from_a_newer_offload_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "newer.db"
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    backend = SQLiteBackend(f"sqlite:///{path}")
    with pytest.raises(ConfigurationError, match="newer"):
        await backend.open()
    await backend.close()


def test_a_relative_url_resolves_against_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    backend = SQLiteBackend("sqlite:///data/jobs.db?synchronous=full")
    assert backend.path == str(tmp_path.resolve() / "data" / "jobs.db")
    assert backend.describe()["synchronous"] == "full"
    monkeypatch.chdir("/")
    assert backend.clone().path == backend.path


@pytest.mark.parametrize(
    "url",
    [
        "sqlite://",
        "sqlite:///:memory:",
        "sqlite:///x.db?synchronous=sometimes",
        "sqlite:///x.db?y=1",
    ],
)
def test_bad_urls_are_refused(url: str) -> None:
    with pytest.raises(ConfigurationError, match="SQLite URL"):
        SQLiteBackend(url)


async def test_a_redrive_is_refused_while_another_live_job_holds_the_key(sqlite_url: str) -> None:
    backend = create_backend(sqlite_url)
    await backend.open()
    try:
        [first] = await backend.job_enqueue_many([_new(unique_key="k")])
        assert await backend.job_cancel(first.id) is not None
        [second] = await backend.job_enqueue_many([_new(unique_key="k")])
        assert second.id != first.id
        assert await backend.job_redrive(first.id) is None
        still = await backend.job_get(first.id)
        assert still is not None
        assert still.state is State.CANCELLED
    finally:
        await backend.close()


ENQUEUER = textwrap.dedent(
    """
    import asyncio, sys
    from uuid_utils import uuid7
    from offload.backends import create_backend
    from offload.job import NewJob

    async def main():
        backend = create_backend(sys.argv[1])
        await backend.open()
        sys.stdin.readline()
        await backend.job_enqueue_many(
            [NewJob(id=str(uuid7()), task="tests.noop", payload=b"{}", queue="mail")]
        )
        await backend.close()

    asyncio.run(main())
    """
)


async def test_a_commit_of_another_process_wakes_a_waiter(sqlite_url: str) -> None:
    backend = create_backend(sqlite_url + "?cross_process_poll=0.05")
    await backend.open()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", ENQUEUER, sqlite_url, stdin=subprocess.PIPE
    )
    try:
        waiter = asyncio.create_task(backend.wait_for_jobs(["mail"], 30.0))
        await asyncio.sleep(0)
        # One connection thread serves calls in order: once this read returns,
        # the waiter has taken its data_version reading, before the commit.
        await backend.job_counts()
        assert proc.stdin is not None
        proc.stdin.write(b"go\n")
        start = time.monotonic()
        await asyncio.wait_for(waiter, 15.0)
        assert time.monotonic() - start < 15.0
        assert await proc.wait() == 0
        assert len(await backend.job_lease("w", ["mail"], 5, 30.0)) == 1
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await backend.close()


async def test_a_file_that_is_not_a_database_is_a_backend_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_bytes(b"these are not the pages of a database\n" * 200)
    backend = SQLiteBackend(f"sqlite:///{path}")
    with pytest.raises(BackendError, match=r"notes\.db") as raised:
        await backend.open()
    assert isinstance(raised.value.__cause__, sqlite3.DatabaseError)
    await backend.close()


async def test_a_directory_that_cannot_be_made_is_a_backend_error(tmp_path: Path) -> None:
    (tmp_path / "plain-file").write_text("not a directory")
    backend = SQLiteBackend(f"sqlite:///{tmp_path / 'plain-file' / 'offload.db'}")
    with pytest.raises(BackendError, match="cannot open the SQLite file") as raised:
        await backend.open()
    assert isinstance(raised.value.__cause__, OSError)
    await backend.close()


async def test_a_failing_statement_is_a_backend_error_naming_the_call(sqlite_url: str) -> None:
    backend = SQLiteBackend(sqlite_url)
    await backend.open()
    try:
        with sqlite3.connect(backend.path) as other:
            other.execute("DROP TABLE events")
        failed = r"SQLite events on .* failed: no such table"
        with pytest.raises(BackendError, match=failed) as raised:
            await backend.event_list(str(uuid7()))
        assert isinstance(raised.value.__cause__, sqlite3.OperationalError)
        assert await backend.job_counts() == {}  # the connection itself still works
    finally:
        await backend.close()


def _tables(path: str) -> set[str]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        return {r[0] for r in rows}


async def test_a_file_of_an_older_schema_version_is_brought_up_to_date(tmp_path: Path) -> None:
    path = str(tmp_path / "old.db")
    [first, *_] = _sql.migrations()
    with sqlite3.connect(path) as conn:
        for statement in first.statements:
            conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {first.version}")
        conn.execute(
            "INSERT INTO jobs (id, task, queue, tenant, state, payload, priority, attempts, "
            "max_attempts, created_at, run_at) "
            "VALUES ('01890000-0000-7000-8000-000000000000', 't', 'default', 'default', "
            "'queued', x'7b7d', 0, 0, 3, 0, 0)"
        )
    assert "workers" not in _tables(path)
    backend = SQLiteBackend(f"sqlite:///{path}")
    await backend.open()
    try:
        [leased] = await backend.job_lease("w", ["default"], 5, 30.0)
        assert leased.id == "01890000-0000-7000-8000-000000000000"
    finally:
        await backend.close()
    assert {"pauses", "schedules", "batches", "limit_slots", "workers"} <= _tables(path)
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)


async def test_tables_made_without_a_recorded_version_are_completed(tmp_path: Path) -> None:
    """A file whose tables exist but whose version was never recorded opens:
    every migration says IF NOT EXISTS, so it completes the schema."""
    path = str(tmp_path / "unversioned.db")
    with sqlite3.connect(path) as conn:
        for migration in _sql.migrations()[:2]:
            for statement in migration.statements:
                conn.execute(statement)
    backend = SQLiteBackend(f"sqlite:///{path}")
    await backend.open()
    try:
        assert await backend.job_enqueue_many([_new()])
    finally:
        await backend.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
