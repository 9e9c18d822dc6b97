"""The real ``offload`` command line, in subprocesses, against a SQLite file and a
small app module written for each test: what a user types and what a script
parses (``--json``), with the documented exit codes (0 ok, 1 refused or not
found, 2 usage)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

APP_SOURCE = textwrap.dedent(
    """
    import os
    from datetime import datetime

    from pydantic import BaseModel

    from offload import App

    app = App(os.environ["OFFLOAD_BACKEND_URL"])


    @app.task(name="cli.add")
    def add(a: int, b: int) -> int:
        return a + b


    @app.task(name="cli.fail", max_attempts=2, retry=[0.01])
    def fail(reason: str) -> None:
        raise RuntimeError(reason)


    @app.task(name="cli.remind")
    def remind(at: datetime) -> str:
        return at.isoformat()


    class Greet(BaseModel):
        name: str


    @app.handler(Greet, name="cli.greet")
    async def greet(command: Greet) -> str:
        return f"hello {command.name}"
    """
)


class Cli:
    """Runs ``python -m offload.cli`` in the test's directory and database."""

    def __init__(self, cwd: Path) -> None:
        self.cwd = cwd
        self.env = {**os.environ, "OFFLOAD_BACKEND_URL": f"sqlite:///{cwd / 'cli.db'}"}
        self.env.pop("OFFLOAD_APP", None)

    def __call__(self, *args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "-m", "offload.cli", *args],
            cwd=self.cwd, env=self.env, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert done.returncode == code, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
        return done

    def json(self, *args: str) -> Any:
        return json.loads(self(*args, "--json").stdout)

    def enqueue(self, task: str, *args: str) -> str:
        job_id = self("--app", "cliapp:app", "enqueue", task, *args).stdout.strip()
        uuid.UUID(job_id)
        return job_id

    def drain(self) -> None:
        self("worker", "cliapp:app", "--burst", "--poll-interval", "0.05", "--queues",
             "default,high")  # fmt: skip

    def drain_until_dead(self, count: int) -> list[dict[str, Any]]:
        """A burst worker leaves jobs that wait for a retry, even a due one, so
        run it again until the failing jobs have used up their attempts."""
        for _ in range(10):
            self.drain()
            dead: list[dict[str, Any]] = self.json("dead", "list")
            if len(dead) >= count:
                return dead
            time.sleep(0.05)
        raise AssertionError(f"fewer than {count} dead job(s) after 10 burst runs")


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    (tmp_path / "cliapp.py").write_text(APP_SOURCE)
    return Cli(tmp_path)


def test_enqueue_list_run_show(cli: Cli) -> None:
    job_id = cli.enqueue("cli.add", "--args", '{"a": 2, "b": 3}')
    listed = cli.json("jobs", "list")
    assert [(j["id"], j["task"], j["state"]) for j in listed] == [(job_id, "cli.add", "queued")]
    assert job_id in cli("jobs", "list").stdout

    cli.drain()

    shown = cli.json("jobs", "show", job_id)
    assert (shown["job"]["state"], shown["job"]["result"]) == ("succeeded", 5)
    assert shown["job"]["arguments"] == {"a": 2, "b": 3}
    assert [e["kind"] for e in shown["events"]] == ["enqueued", "started", "succeeded"]
    human = cli("jobs", "show", job_id).stdout
    assert "succeeded" in human
    assert "started" in human


def test_positional_args_short_names_json_types_and_command_handlers(cli: Cli) -> None:
    added = cli.enqueue("add", "--args", "[4, 5]")
    reminded = cli.enqueue("remind", "--args", '{"at": "2030-01-02T03:04:05Z"}')
    greeted = cli.enqueue("cli.greet", "--args", '{"name": "Ada"}', "--queue", "high")
    cli.drain()
    assert cli.json("jobs", "show", added)["job"]["result"] == 9
    assert cli.json("jobs", "show", reminded)["job"]["result"] == "2030-01-02T03:04:05+00:00"
    shown = cli.json("jobs", "show", greeted)["job"]
    assert (shown["queue"], shown["result"]) == ("high", "hello Ada")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["cli.add", "--args", '{"a": "x", "b": 1}'], "a: Input should be a valid integer"),
        (["cli.add", "--args", '{"a": 1}'], "b: Field required"),
        (["cli.add", "--args", "{not json"], "--args is not valid JSON"),
        (["cli.add", "--args", "7"], "must be a JSON object"),
        (
            ["cli.nope"],
            "unknown task 'cli.nope'; registered tasks: cli.add, cli.fail, cli.greet, cli.remind",
        ),
    ],
)
def test_invalid_input_exits_1_and_stores_nothing(cli: Cli, args: list[str], message: str) -> None:
    done = cli("--app", "cliapp:app", "enqueue", *args, code=1)
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert cli.json("jobs", "list") == []


def test_unknown_or_malformed_job_id_exits_1(cli: Cli) -> None:
    unknown = "01900000-0000-7000-8000-000000000000"
    for command in (["jobs", "show"], ["jobs", "cancel"], ["dead", "retry"]):
        assert f"no job '{unknown}'" in cli(*command, unknown, code=1).stderr
        assert "not a job id" in cli(*command, "nope", code=1).stderr


def test_cancel_a_waiting_job_then_refuse_a_second_time(cli: Cli) -> None:
    job_id = cli.enqueue("cli.add", "--args", "[1, 1]", "--delay", "3600")
    assert cli.json("jobs", "show", job_id)["job"]["state"] == "scheduled"
    assert "cancelled" in cli("jobs", "cancel", job_id).stdout
    assert "already ended (cancelled)" in cli("jobs", "cancel", job_id, code=1).stderr


def test_dead_letter_list_and_retry(cli: Cli) -> None:
    job_id = cli.enqueue("cli.fail", "--args", '{"reason": "broken on purpose"}')
    dead = cli.drain_until_dead(1)
    assert [(j["id"], j["attempts"]) for j in dead] == [(job_id, 2)]
    assert dead[0]["error"]["message"] == "broken on purpose"
    assert "broken on purpose" in cli("dead", "list").stdout
    assert "RuntimeError: broken on purpose" in cli("jobs", "show", job_id).stdout

    assert "queued again" in cli("dead", "retry", job_id).stdout
    assert cli.json("jobs", "show", job_id)["job"]["state"] == "queued"
    refused = cli("dead", "retry", job_id, code=1).stderr
    assert "is queued; only dead or cancelled jobs can be retried" in refused

    cli.drain_until_dead(1)
    assert "1 job(s) queued again" in cli("dead", "retry", "--all").stdout
    assert cli.json("dead", "list") == []
    cli("dead", "retry", code=2)


def test_queues_show_depth_per_state(cli: Cli) -> None:
    cli.enqueue("cli.add", "--args", "[1, 2]")
    cli.enqueue("cli.add", "--args", "[3, 4]")
    cli.enqueue("cli.add", "--args", "[5, 6]", "--queue", "high")
    depth = cli.json("queues")
    assert depth["default"]["queued"] == 2
    assert depth["high"] == {
        "scheduled": 0, "queued": 1, "running": 0, "succeeded": 0, "cancelled": 0, "dead": 0,
    }  # fmt: skip
    human = cli("queues").stdout
    assert "default" in human
    assert "high" in human


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("cliapp", "is not MODULE:ATTR"),
        ("missing_module:app", "no module named 'missing_module'"),
        ("cliapp:nothing", "has no attribute 'nothing'"),
        ("cliapp:add", "is a Task, not an offload App"),
    ],
)
def test_bad_app_spec_is_a_usage_error(cli: Cli, spec: str, message: str) -> None:
    done = cli("--app", spec, "enqueue", "cli.add", code=2)
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert message in cli("worker", spec, "--burst", code=2).stderr


def test_commands_that_run_tasks_need_the_app(cli: Cli) -> None:
    assert "--app" in cli("enqueue", "cli.add", code=2).stderr
    assert "--app" in cli("worker", "--burst", code=2).stderr


def test_the_console_script_is_installed(cli: Cli) -> None:
    script = Path(sys.executable).with_name("offload")
    done = subprocess.run([script, "--help"], capture_output=True, text=True, check=False)
    assert done.returncode == 0
    assert "worker" in done.stdout


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--priority", str(2**40)], "priority must be between"),
        (["--delay", "inf"], "delay must be a finite number"),
        (["--tenant", "a\x01b"], "control characters"),
    ],
)
def test_enqueue_options_obey_the_one_validation(cli: Cli, option: list[str], message: str) -> None:
    done = cli("--app", "cliapp:app", "enqueue", "cli.add", "--args", '{"a": 1, "b": 2}',
               *option, code=1)  # fmt: skip
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert cli.json("jobs", "list") == []
