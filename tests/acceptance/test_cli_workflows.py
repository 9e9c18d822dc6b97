"""``offload workflows list|show|cancel`` in subprocesses against a SQLite file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.acceptance.test_cli import APP_SOURCE, Cli

FLOW_SOURCE = """
from offload import chain, group


def make_flow() -> str:
    graph = chain(add.prepare(1, 1), group(add.prepare(1, 2), add.prepare(2, 2)))
    return app.workflow(graph, name="fan").id
"""


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    (tmp_path / "cliapp.py").write_text(APP_SOURCE + FLOW_SOURCE)
    return Cli(tmp_path)


def make_flow(cli: Cli) -> str:
    made = cli.env | {"PYTHONPATH": str(cli.cwd)}
    return subprocess.run(
        [sys.executable, "-c", "import cliapp; print(cliapp.make_flow())"],
        cwd=cli.cwd, env=made, capture_output=True, text=True, check=True, timeout=60,
    ).stdout.strip()  # fmt: skip


def test_workflows_list_show_cancel(cli: Cli) -> None:
    flow_id = make_flow(cli)
    [listed] = cli.json("workflows", "list")
    assert (listed["id"], listed["name"], listed["total"]) == (flow_id, "fan", 3)
    shown = cli.json("workflows", "show", flow_id)
    assert shown["state"] == "running"
    assert len(shown["edges"]) == 2
    assert shown["counts"] == {"queued": 1, "scheduled": 2}
    text = cli("workflows", "show", flow_id).stdout
    assert "add-1" in text
    cli("workflows", "show", "not-an-id", code=1)
    out = cli("workflows", "cancel", flow_id).stdout
    assert "cancelled" in out
    assert cli.json("workflows", "show", flow_id)["counts"] == {"cancelled": 3}
