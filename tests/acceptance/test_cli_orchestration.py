"""The ``offload`` command line for orchestration: pause and resume, schedules,
batches; in subprocesses against a SQLite file, like a user types it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.acceptance.test_cli import APP_SOURCE, Cli

BATCH_SOURCE = """

def make_batch(n: int) -> str:
    batch = app.batch([add.prepare(i, i) for i in range(n)], name="sums")
    return batch.id
"""


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    (tmp_path / "cliapp.py").write_text(APP_SOURCE + BATCH_SOURCE)
    return Cli(tmp_path)


def test_pause_holds_a_queue_until_resume(cli: Cli) -> None:
    assert cli("pause", "--queue", "default").stdout.strip() == "paused queue 'default'"
    assert cli.json("pause", "--list") == [
        {"tenant": None, "queue": "default", "at": cli.json("pause", "--list")[0]["at"]}
    ]
    job_id = cli.enqueue("cli.add", "--args", '{"a": 1, "b": 1}')
    cli.drain()  # burst: the paused job is queued, yet nothing may start
    assert cli.json("jobs", "show", job_id)["job"]["state"] == "queued"
    cli("resume", "--queue", "default")
    cli("resume", "--queue", "default", code=1)  # not paused any more
    cli.drain()
    assert cli.json("jobs", "show", job_id)["job"]["state"] == "succeeded"


def test_schedules_add_list_delete(cli: Cli) -> None:
    out = cli("--app", "cliapp:app", "schedules", "add", "nightly", "cli.add", "0 3 * * *",
              "--args", '{"a": 1, "b": 2}', "--timezone", "Europe/Berlin",
              "--description", "Nightly sums").stdout  # fmt: skip
    assert "next firing" in out
    [listed] = cli.json("schedules", "list", "--next", "3")
    assert (listed["id"], listed["task"], listed["cron"]) == ("nightly", "cli.add", "0 3 * * *")
    assert listed["description"] == "Nightly sums"
    assert len(listed["upcoming"]) == 3
    assert all(t.endswith(("01:00:00+00:00", "02:00:00+00:00")) for t in listed["upcoming"])
    cli("--app", "cliapp:app", "schedules", "add", "bad", "cli.add", "61 * * * *", code=1)
    cli("--app", "cliapp:app", "schedules", "add", "bad", "cli.add", "* * * * *",
        "--timezone", "Mars/Olympus", code=1)  # fmt: skip
    cli("--app", "cliapp:app", "schedules", "add", "bad", "cli.add", "* * * * *",
        "--args", '{"a": "x"}', code=1)  # fmt: skip
    cli("schedules", "delete", "nightly")
    cli("schedules", "delete", "nightly", code=1)
    assert cli.json("schedules", "list") == []


def test_batches_list_show_wait_cancel(cli: Cli) -> None:
    made = cli.env | {"PYTHONPATH": str(cli.cwd)}
    batch_id = subprocess.run(
        [sys.executable, "-c", "import cliapp; print(cliapp.make_batch(4))"],
        cwd=cli.cwd, env=made, capture_output=True, text=True, check=True, timeout=60,
    ).stdout.strip()  # fmt: skip
    [listed] = cli.json("batches", "list")
    assert (listed["id"], listed["total"], listed["counts"]) == (batch_id, 4, {"queued": 4})
    cli("batches", "wait", batch_id, "--timeout", "0.3", code=1)
    cli.drain()
    waited = cli("batches", "wait", batch_id, "--timeout", "10")
    assert "succeeded 4" in waited.stdout
    shown = cli.json("batches", "show", batch_id)
    assert shown["counts"] == {"succeeded": 4}
    cli("batches", "show", "not-an-id", code=1)
    cli("batches", "cancel", batch_id)  # nothing left to cancel: all ended
    assert cli.json("batches", "show", batch_id)["counts"] == {"succeeded": 4}


def test_workers_lists_none_when_no_worker_runs(cli: Cli) -> None:
    assert cli.json("workers") == []
    assert "0 worker(s)" in cli("workers").stdout
