"""Scenarios 9, 13-16 and 18-21 of the fault catalogue: what a job carries or
does, checked in one process on every backend (memory included) with a worker
in the test's own event loop and the same ledger as the process scenarios."""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import pytest
from uuid_utils import uuid7

from offload import App, EventKind, JobQuery, NewJob, State
from offload.errors import PayloadTooLargeError
from offload.testing import wait_for_job
from offload.worker import Worker
from tests.faults.checker import check
from tests.faults.ledger import Ledger
from tests.faults.tasks import register
from tests.faults.workers import enqueue

LEASE = 1.0


@pytest.fixture
async def fapp(backend_url: str, ledger: Ledger) -> AsyncIterator[App]:
    app = App(backend_url)
    register(app, ledger)
    yield app
    await app.close_async()


async def drain(app: App, **options: float) -> None:
    """A burst worker: runs until nothing of the queue is queued or running."""
    worker = Worker(app, burst=True, handle_signals=False, poll_interval=0.05,
                    lease_seconds=options.get("lease", LEASE), fetch_batch=10)  # fmt: skip
    await asyncio.wait_for(worker.run(), timeout=options.get("timeout", 60))


async def run_until_ended(app: App, job_id: str, timeout: float = 60) -> None:
    """A worker that stays up through retries scheduled for later."""
    worker = Worker(app, handle_signals=False, poll_interval=0.05, lease_seconds=LEASE)
    running = asyncio.create_task(worker.run())
    try:
        await wait_for_job(app, job_id, timeout=timeout)
    finally:
        worker.stop()
        await asyncio.wait_for(running, 30)


async def _raw(app: App, task: str, payload: bytes) -> str:
    [job] = await (await app.backend()).job_enqueue_many([NewJob(str(uuid7()), task, payload)])
    return job.id


@pytest.mark.parametrize(
    ("payload", "reason"),
    [(b"{not json", "PayloadError"), (b"\xff\xfe\x00", "PayloadError"),
     (b'{"unexpected": 1}', "PayloadError"), (b"[1, 2]", "PayloadError")],
    ids=["bad-json", "non-utf8", "wrong-schema", "not-an-object"],
)  # fmt: skip
async def test_s13_malformed_job(fapp: App, ledger: Ledger, payload: bytes, reason: str) -> None:
    good = await enqueue(fapp, "f.record", 3)
    bad = await _raw(fapp, "f.record", payload)
    await drain(fapp)  # one lease of 10 takes the bad job with the good ones
    dead = await fapp.get_job_async(bad)
    assert (dead.state, dead.attempts) == (State.DEAD, 1)  # no retry
    assert dead.error is not None
    assert dead.error.type == reason
    assert EventKind.FAILED not in [e.kind for e in await fapp.events_async(bad)]
    assert await check(fapp, ledger, good, serving_task=None) == []


@pytest.mark.parametrize("task", ["os.system", "nope", "subprocess:run"])
async def test_s14_unknown_task_name(fapp: App, ledger: Ledger, task: str) -> None:
    before = set(sys.modules)
    bad = await _raw(fapp, task, b'{"command": "touch /tmp/offload-s14-pwned"}')
    await drain(fapp)
    dead = await fapp.get_job_async(bad)
    assert dead.state is State.DEAD
    assert dead.error is not None
    assert dead.error.type == "UnknownTaskError"
    assert "no task is registered" in dead.error.message
    assert not Path("/tmp/offload-s14-pwned").exists()
    assert {"subprocess", "os"} & (set(sys.modules) - before) == set()  # nothing imported


async def test_s15_oversized_payload(backend_url: str) -> None:
    app = App(backend_url)

    @app.task(name="f.big")
    def big(blob: str) -> None: ...

    with pytest.raises(PayloadTooLargeError, match="bytes"):
        await big.enqueue_async("x" * (2 * 1024 * 1024))
    assert await app.list_jobs_async(JobQuery()) == []  # nothing stored
    await app.close_async()


async def test_s16_task_raises(fapp: App, ledger: Ledger) -> None:
    [job_id] = await enqueue(fapp, "f.raises", 1, max_attempts=3)
    await run_until_ended(fapp, job_id)
    dead = await fapp.get_job_async(job_id)
    assert (dead.state, dead.attempts) == (State.DEAD, 3)
    assert dead.error is not None
    assert dead.error.traceback
    assert "on purpose" in dead.error.message
    events = await fapp.events_async(job_id)
    retries = [e for e in events if e.kind is EventKind.RETRY_SCHEDULED]
    starts = [e.at for e in events if e.kind is EventKind.STARTED]
    assert len(retries) == 2
    assert len(starts) == 3
    for n, (retry, next_start) in enumerate(zip(retries, starts[1:], strict=True), start=1):
        due = datetime.fromisoformat(str(retry.data["run_at"]))
        waited = (due - retry.at).total_seconds()
        assert 0 <= waited <= 2 ** (n - 1) + 0.5  # exponential cap, full jitter below it
        assert next_start >= due  # never run before its backoff
    assert await check(fapp, ledger, [job_id], serving_task=None) == []


async def test_s18_task_hangs_past_its_timeout(
    fapp: App, ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAULT_HANG", "4")  # past the task's 1 s timeout
    [job_id] = await enqueue(fapp, "f.hang", 1, max_attempts=1, timeout=1.0)
    [after] = await enqueue(fapp, "f.record", 1)
    worker = Worker(fapp, burst=True, handle_signals=False, concurrency=1,
                    poll_interval=0.05, lease_seconds=LEASE)  # fmt: skip
    await asyncio.wait_for(worker.run(), timeout=60)
    dead = await fapp.get_job_async(job_id)
    assert (dead.state, dead.attempts) == (State.DEAD, 1)
    assert dead.error is not None
    assert "timeout" in (dead.error.type + dead.error.message).lower()
    # the one slot was freed: the next job ran on the same worker
    assert (await fapp.get_job_async(after)).state is State.SUCCEEDED


async def test_s19_concurrent_enqueues_with_one_unique_key(fapp: App, ledger: Ledger) -> None:
    record = fapp.get_task("f.record")
    barrier = threading.Barrier(20)
    ids: list[str] = []

    def one() -> None:
        barrier.wait()
        ids.append(record.options(unique_key="once").enqueue().id)

    threads = [threading.Thread(target=one) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        await asyncio.to_thread(t.join, 60)
    # Every caller got an answer (a thread whose first sync call raised would
    # leave no id), and all answers name one job.
    assert (len(ids), len(set(ids))) == (20, 1)
    await drain(fapp)
    runs = [r for r in ledger.executions() if r.job_id == ids[0]]
    assert len(runs) == 1
    assert (await fapp.get_job_async(ids[0])).state is State.SUCCEEDED


async def test_s20_dead_letter_redrive_called_twice_at_once(fapp: App, ledger: Ledger) -> None:
    [job_id] = await enqueue(fapp, "f.raises", 1, max_attempts=1)
    await drain(fapp)
    assert (await fapp.get_job_async(job_id)).state is State.DEAD
    answers = await asyncio.gather(fapp.retry_async(job_id), fapp.retry_async(job_id))
    assert sum(a is not None for a in answers) == 1  # one redrive wins
    await drain(fapp)
    assert len([r for r in ledger.executions() if r.job_id == job_id]) == 2  # once more, not twice


async def test_s21_a_delay_longer_than_the_lease(fapp: App, ledger: Ledger) -> None:
    [job_id] = await enqueue(fapp, "f.record", 1, delay=3 * LEASE)
    await drain(fapp)  # a first worker leaves it scheduled and stops
    assert (await fapp.get_job_async(job_id)).state is State.SCHEDULED
    await run_until_ended(fapp, job_id)
    done = await fapp.get_job_async(job_id)
    await drain(fapp)  # a loop would show as a second run here
    runs = [r for r in ledger.executions() if r.job_id == job_id]
    assert (done.state, done.attempts, len(runs)) == (State.SUCCEEDED, 1, 1)
    assert runs[0].start >= done.created_at.timestamp() + 3 * LEASE - 0.05


class _Exploit:
    """Unpickling this would create a file: the proof a payload was unpickled."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (self.path, "w"))


async def test_s24_pickle_or_code_in_a_payload(fapp: App, tmp_path: Path) -> None:
    import pickle

    target = tmp_path / "pwned"
    bad = await _raw(fapp, "f.record", pickle.dumps(_Exploit(str(target))))
    code = await _raw(fapp, "f.record", b'{"__class__": "os.system", "args": ["touch pwned"]}')
    await drain(fapp)
    for job_id in (bad, code):
        dead = await fapp.get_job_async(job_id)
        assert dead.state is State.DEAD
        assert dead.error is not None
        assert dead.error.type == "PayloadError"
    assert not target.exists()


SECRETS = ("hunter2-password", "c2VjcmV0LWFjY291bnQta2V5", "s3cret-in-url")


async def test_s25_secrets_in_arguments_or_errors(caplog: pytest.LogCaptureFixture) -> None:
    """A connection string in an error is masked in the logs, the trace's
    exception event, the stored error, and everything the API and dashboard
    show of the job (resource, events, page)."""
    import logging

    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from starlette.testclient import TestClient

    from offload.integrations.opentelemetry import OpenTelemetryMiddleware
    from offload.web import create_app

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    app = App("memory://", middleware=[OpenTelemetryMiddleware(provider)])

    @app.task(name="f.leaky", max_attempts=1)
    def leaky(dsn: str) -> None:
        raise RuntimeError(f"cannot connect with {dsn}")

    dsn = (f"password={SECRETS[0]} AccountKey={SECRETS[1]}; "
           f"postgresql://app:{SECRETS[2]}@db/x")  # fmt: skip
    with caplog.at_level(logging.DEBUG):
        job = await leaky.enqueue_async(dsn)
        await drain(app)
    dead = await app.get_job_async(job.id)
    assert dead.state is State.DEAD
    assert dead.error is not None
    assert "***" in dead.error.message

    logged = "\n".join(r.getMessage() + str(r.__dict__) for r in caplog.records)
    assert logged
    assert _leaked(logged) == []

    events = [e for s in exporter.get_finished_spans() for e in s.events]
    traced = [str(dict(e.attributes or {})) for e in events if e.name == "exception"]
    assert traced
    assert _leaked("\n".join(traced)) == []

    with TestClient(create_app(app)) as web:
        resource = web.get(f"/api/v1/jobs/{job.id}").json()
        shown = [str(resource["error"]), str(resource.get("events")),
                 web.get(f"/api/v1/jobs/{job.id}/events").text,
                 web.get("/api/v1/dead").text, web.get(f"/jobs/{job.id}").text]  # fmt: skip
    assert "***" in shown[0]
    assert _leaked("\n".join(shown)) == []


def _leaked(text: str) -> list[str]:
    return [s for s in SECRETS if s in text]
