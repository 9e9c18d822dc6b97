"""``offload stats`` in a subprocess against a SQLite file: the table, ``--json``,
and totals that stay after the purge."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.acceptance.test_cli import APP_SOURCE, Cli

RUN_SOURCE = """
import asyncio
from datetime import timedelta

from offload.lifecycle import State
from offload.testing import drain


def run_and_purge() -> None:
    for n in range(3):
        add.enqueue(n, 1)

    async def go() -> None:
        await drain(app)
        backend = await app.backend()
        await backend.job_purge((await backend.now()) + timedelta(seconds=1), list(State))
        await app.close_async()

    asyncio.run(go())
"""


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    (tmp_path / "cliapp.py").write_text(APP_SOURCE + RUN_SOURCE)
    return Cli(tmp_path)


def test_stats_show_totals_kept_after_the_purge(cli: Cli) -> None:
    made = cli.env | {"PYTHONPATH": str(cli.cwd)}
    subprocess.run([sys.executable, "-c", "import cliapp; cliapp.run_and_purge()"],
                   cwd=cli.cwd, env=made, check=True, timeout=60)  # fmt: skip
    assert cli.json("jobs", "list") == []
    found = cli.json("stats", "--days", "2")
    assert found["total"]["processed"] == 3
    assert found["total"]["succeeded"] == 3
    assert [d["processed"] for d in found["days"]][-1] == 3
    text = cli("stats").stdout
    assert "all time" in text
    assert "processed" in text
    cli("stats", "--days", "0", code=2)
