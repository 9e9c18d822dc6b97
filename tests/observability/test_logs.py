"""Logs: job fields on every line of a job, JSON lines from the real worker,
credentials masked."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from offload import App
from offload.observability.logs import (
    JobLogFilter,
    JsonFormatter,
    RedactingFilter,
    current_job,
    prepare_handler,
    redact,
)
from offload.testing import drain


def test_credentials_are_masked_in_urls_and_connection_strings() -> None:
    assert redact("redis://app:s3cret@cache:6379/0") == "redis://app:***@cache:6379/0"
    assert redact("postgresql://u:p%40ss@db/x and more") == "postgresql://u:***@db/x and more"
    assert redact("AccountName=a;AccountKey=abc+/==;X=1") == "AccountName=a;AccountKey=***;X=1"
    assert redact("GET /stream?token=tok123&x=1") == "GET /stream?token=***&x=1"
    assert redact("sqlite:///tmp/offload.db") == "sqlite:///tmp/offload.db"


def test_a_redacting_handler_never_writes_the_secret() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter())
    logger = logging.getLogger("offload.test.redact")
    logger.addHandler(handler)
    try:
        logger.warning("cannot reach %s", "redis://:hunter2@cache:6379")
    finally:
        logger.removeHandler(handler)
    assert "hunter2" not in stream.getvalue()
    assert "redis://:***@cache:6379" in stream.getvalue()


async def test_lines_a_task_logs_carry_its_job() -> None:
    stream = io.StringIO()
    handler = prepare_handler(logging.StreamHandler(stream))
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("offload.test.task")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    app = App("memory://")

    @app.task(name="logs.sync", queue="q")
    def sync_task() -> None:
        logger.info("from a thread")

    @app.task(name="logs.async", queue="q")
    async def async_task() -> None:
        logger.info("from the loop")

    try:
        a = await sync_task.options(tenant="acme").enqueue_async()
        b = await async_task.enqueue_async()
        await drain(app, ["q"])
        logger.info("outside")
    finally:
        logger.removeHandler(handler)
    lines = {e["message"]: e for e in map(json.loads, stream.getvalue().splitlines())}
    assert {k: lines["from a thread"][k] for k in ("job_id", "task", "queue", "tenant",
            "attempt")} == {"job_id": a.id, "task": "logs.sync", "queue": "q",
                            "tenant": "acme", "attempt": 1}  # fmt: skip
    assert lines["from the loop"]["job_id"] == b.id
    assert "job_id" not in lines["outside"]
    assert current_job.get() is None
    await app.close_async()


def test_the_filter_keeps_fields_a_record_already_has() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "m", None, None)
    record.job_id = "given"
    assert JobLogFilter().filter(record)
    assert record.job_id == "given"
    assert record.task is None  # type: ignore[attr-defined]


APP_SOURCE = textwrap.dedent(
    """
    import logging
    import os

    from offload import App

    app = App(os.environ["OFFLOAD_BACKEND_URL"])
    log = logging.getLogger("logapp")


    @app.task(name="logs.work")
    def work(n: int) -> int:
        log.info("working on item %d", n)
        return n


    @app.task(name="logs.fail", max_attempts=1)
    def fail() -> None:
        raise RuntimeError("secret-payload-value")
    """
)


async def test_the_worker_writes_json_lines_with_the_job(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'logs.db'}"
    (tmp_path / "logapp.py").write_text(APP_SOURCE)
    app = App(url)

    @app.task(name="logs.work")
    def work(n: int) -> None: ...

    @app.task(name="logs.fail", max_attempts=1)
    def fail() -> None: ...

    good = await work.enqueue_async(3)
    bad = await fail.enqueue_async()
    await app.close_async()
    env = {**os.environ, "OFFLOAD_BACKEND_URL": url, "PYTHONPATH": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "offload.cli", "worker", "logapp:app", "--burst",
         "--log-format", "json"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    entries = [json.loads(line) for line in done.stderr.splitlines()]
    assert all({"time", "level", "logger", "message"} <= e.keys() for e in entries)
    [working] = [e for e in entries if e["message"] == "working on item 3"]
    assert (working["job_id"], working["task"], working["attempt"]) == (good.id, "logs.work", 1)
    [failed] = [e for e in entries if e.get("job_id") == bad.id]
    assert failed["logger"] == "offload.worker"
    assert "RuntimeError" in failed["message"]
    assert "secret-payload-value" not in done.stderr
