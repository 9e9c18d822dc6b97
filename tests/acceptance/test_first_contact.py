"""What a new user meets first (issue 13, items 14-16): credentials never
printed, reads that do not create stores, PostgreSQL that fails fast in one line
and says to run ``offload migrate``."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from offload import App, BackendError, ConfigurationError
from offload.backends import create_backend
from offload.cli import main
from offload.cli.demo import hint
from tests.servers import require

SECRET = "SuperSecret123"


def _invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def test_an_unknown_scheme_error_hides_the_password() -> None:
    with pytest.raises(ConfigurationError) as caught:
        create_backend(f"postgresq://u:{SECRET}@db.example/x")
    assert SECRET not in str(caught.value)
    assert "postgresq" in str(caught.value)


def test_the_cli_never_prints_the_password() -> None:
    code, output = _invoke("--backend", f"postgresq://u:{SECRET}@db.example/x", "jobs", "list")
    assert code == 2
    assert SECRET not in output
    assert "u:***@" in output


def test_the_demo_footer_hides_the_password() -> None:
    shown = hint(f"redis://u:{SECRET}@127.0.0.1:6379/0", None).plain
    assert SECRET not in shown
    assert "redis://u:***@127.0.0.1" in shown


def test_a_read_does_not_create_the_directory_or_the_database(tmp_path: Path) -> None:
    missing = tmp_path / "nonexistent-dir" / "x.db"
    code, output = _invoke("--backend", f"sqlite:///{missing}", "jobs", "list")
    assert code == 1
    assert str(missing.parent) in output
    assert not missing.parent.exists()
    here = tmp_path / "x.db"
    code, output = _invoke("--backend", f"sqlite:///{here}", "jobs", "list")
    assert code == 0
    assert "0 job(s)" in output
    assert not here.exists()


def test_a_read_of_an_existing_database_works(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    assert _invoke("--backend", url, "migrate")[0] == 0
    code, output = _invoke("--backend", url, "jobs", "list")
    assert code == 0, output
    assert "0 job(s)" in output


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_an_unreachable_postgres_fails_in_one_line_naming_where(
    caplog: pytest.LogCaptureFixture,
) -> None:
    require("psycopg")
    port = _closed_port()
    app = App(f"postgresql://u:{SECRET}@127.0.0.1:{port}/nowhere?pool_timeout=30")
    with pytest.raises(BackendError) as caught:
        await app.backend()
    message = str(caught.value)
    assert f"127.0.0.1:{port}/nowhere" in message
    assert "\n" not in message
    assert SECRET not in message
    assert not [r for r in caplog.records if r.name.startswith("psycopg")]


def test_migrate_false_on_a_fresh_schema_says_to_run_offload_migrate(
    request: pytest.FixtureRequest,
) -> None:
    from tests.servers.postgres import postgres_url

    url = postgres_url(request)

    async def open_unmigrating() -> None:
        app = App(f"{url}&migrate=false")
        try:
            await app.backend()
        finally:
            await app.close_async()

    with pytest.raises(BackendError, match="offload migrate"):
        asyncio.run(open_unmigrating())
    code, output = _invoke("--backend", url, "migrate")
    assert code == 0, output
    assert "applied migration" in output
    asyncio.run(open_unmigrating())


SYNC_SCRIPT = """
import sys
from offload import App
app = App(sys.argv[1])

@app.task(name="t.add")
def add(a: int, b: int) -> int:
    return a + b

job = add.enqueue(1, 2)
print(app.get_job(job.id).state.value)
"""


def test_a_sync_script_on_postgres_exits_without_pending_task_warnings(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    from tests.servers.postgres import postgres_url

    script = tmp_path / "script.py"
    script.write_text(SYNC_SCRIPT)
    done = subprocess.run(
        [sys.executable, str(script), postgres_url(request)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "queued"
    assert "Task was destroyed" not in done.stderr
    assert done.stderr == ""


def test_a_firing_is_shown_in_the_schedules_zone_and_names_it() -> None:
    from datetime import UTC, datetime

    from offload.cli.output import when_in

    moment = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
    assert when_in(moment, "Europe/Paris") == "2026-01-15 13:00:00 CET"
    assert when_in(moment, "UTC") == "2026-01-15 12:00:00 UTC"


def test_every_missing_extra_and_bad_url_is_a_usage_error() -> None:
    import click

    from offload.cli.runtime import missing_extra

    assert isinstance(missing_extra("the web server", "web", "uvicorn"), click.UsageError)
    code, _ = _invoke("--backend", "nope://x", "jobs", "list")
    assert code == 2


def test_poll_interval_has_help() -> None:
    _, output = _invoke("worker", "--help")
    assert "--poll-interval S" in output
    line = output[output.index("--poll-interval") :].split("\n--")[0]
    assert "Seconds" in line


def test_a_positional_app_is_not_called_dash_dash_app(tmp_path: Path) -> None:
    code, output = _invoke("worker", "no_such_module_h2:app", "--burst")
    assert code == 2
    assert "no_such_module_h2" in output
    assert "--app:" not in output
    code, output = _invoke("--app", "no_such_module_h2:app", "worker", "--burst")
    assert "--app:" in output


def test_the_readme_quickstart_works_as_written(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    readme = (root / "README.md").read_text()
    assert "cd examples && ../scripts/python quickstart.py" in readme
    (tmp_path / "examples").mkdir()
    (tmp_path / "examples" / "quickstart.py").write_text(
        (root / "examples" / "quickstart.py").read_text()
    )
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env["PATH"] = "/usr/bin:/bin"  # no activated .venv
    cwd = tmp_path / "examples"
    ran = subprocess.run([str(root / "scripts" / "python"), "quickstart.py"], cwd=cwd, env=env,
                         capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    assert "succeeded welcome mail sent to ada@example.com" in ran.stdout
    listed = subprocess.run(
        [str(root / "scripts" / "offload"), "--backend", "sqlite:///quickstart.db", "jobs", "list"],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    assert "1 job(s)" in listed.stdout
