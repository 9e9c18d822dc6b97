"""Each example of docs/migrating.md runs as a user would run it, in a subprocess."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

EXPECTED = {
    "background_processing": "succeeded: hello foo (timed 1 run)",
    "itmo_background_tasks": "succeeded: pages=3 checkpoint={'page_token': 3}",
    "ao_background_jobs": "succeeded: https://files.example/",
    "core_task_processor": "['hello', 'world'] finished=True",
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_runs(name: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", f"examples.migrating.{name}"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert EXPECTED[name] in done.stdout
